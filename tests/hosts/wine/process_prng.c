/* bcryptprimitives.dll for Wine 8.0, which lacks it: Rust's standard library (1.78 and later)
 * imports ProcessPrng from it on Windows, so no Rust-built Windows program starts under Wine
 * without it. Test-only: Windows 10 and later ship the real DLL, and the plugin never carries
 * this one. ProcessPrng fills a buffer with random bytes and always succeeds; here the bytes come
 * from RtlGenRandom (advapi32's SystemFunction036), which Wine implements. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
	while (length > 0) {
		ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
		if (!SystemFunction036(data, chunk))
			return FALSE;
		data += chunk;
		length -= chunk;
	}
	return TRUE;
}
