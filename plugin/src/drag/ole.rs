//! The Windows drag source: OLE `DoDragDrop` with a data object that offers one file as
//! `CF_HDROP`, the file list Explorer puts on a drag and that DAWs' track areas accept.
//!
//! [`drag_file`] runs the whole drag on the calling thread, a thread of its own, so the window's
//! thread keeps drawing while OLE's drag loop runs. OLE reads the button from the calling
//! thread's input state, and the button went down on the window's thread, so the drag thread
//! shares that thread's input (`AttachThreadInput`) for as long as the drag lasts.

use std::mem::ManuallyDrop;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows::core::{Ref, BOOL, HRESULT};
use windows::Win32::Foundation::{
    DATA_S_SAMEFORMATETC, DRAGDROP_S_CANCEL, DRAGDROP_S_DROP, DRAGDROP_S_USEDEFAULTCURSORS, DV_E_FORMATETC, DV_E_TYMED,
    E_NOTIMPL, E_OUTOFMEMORY, OLE_E_ADVISENOTSUPPORTED, POINT, S_OK,
};
use windows::Win32::System::Com::{
    IAdviseSink, IDataObject, IDataObject_Impl, IEnumFORMATETC, IEnumSTATDATA, DATADIR_GET, DVASPECT_CONTENT,
    FORMATETC, STGMEDIUM, STGMEDIUM_0, TYMED_HGLOBAL,
};
use windows::Win32::System::Memory::{GlobalAlloc, GlobalLock, GlobalUnlock, GMEM_MOVEABLE, GMEM_ZEROINIT};
use windows::Win32::System::Ole::{
    DoDragDrop, IDropSource, IDropSource_Impl, OleInitialize, OleUninitialize, CF_HDROP, DROPEFFECT, DROPEFFECT_COPY,
    DROPEFFECT_NONE,
};
use windows::Win32::System::SystemServices::{MK_LBUTTON, MODIFIERKEYS_FLAGS};
use windows::Win32::System::Threading::{AttachThreadInput, GetCurrentThreadId};
use windows::Win32::UI::Shell::{SHCreateStdEnumFmtEtc, DROPFILES};
use windows_core::implement;

/// How a drag ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DragOutcome {
    /// A drop target took the file.
    Dropped,
    /// The button was released where nothing accepts a file.
    Refused,
    /// Escape was pressed.
    Cancelled,
}

/// The calling thread's id, for [`drag_file`]'s `input_of`.
pub fn current_thread() -> u32 {
    // SAFETY: no arguments, no failure.
    unsafe { GetCurrentThreadId() }
}

/// Drags `path` (an existing file) from the pointer until the button is released or Escape is
/// pressed. Blocks for the whole drag. `input_of` is the thread whose window the button was
/// pressed on (the window's thread; [`current_thread`] there).
pub fn drag_file(path: &Path, input_of: u32) -> Result<DragOutcome, String> {
    let data: IDataObject = FileData::new(path).into();
    let source: IDropSource = DropSource.into();
    // SAFETY: OLE is initialised on this thread for the call and released after it, and the
    // input is attached for the call only; the data object and the drop source outlive
    // DoDragDrop.
    unsafe {
        OleInitialize(None).map_err(|e| format!("could not start OLE: {e}"))?;
        let this_thread = GetCurrentThreadId();
        let attached = input_of != this_thread && AttachThreadInput(this_thread, input_of, true).as_bool();
        let mut effect = DROPEFFECT_NONE;
        let result = DoDragDrop(&data, &source, DROPEFFECT_COPY, &mut effect);
        if attached {
            let _ = AttachThreadInput(this_thread, input_of, false);
        }
        OleUninitialize();
        match result {
            r if r == DRAGDROP_S_DROP && effect != DROPEFFECT_NONE => Ok(DragOutcome::Dropped),
            r if r == DRAGDROP_S_DROP => Ok(DragOutcome::Refused),
            r if r == DRAGDROP_S_CANCEL => Ok(DragOutcome::Cancelled),
            r => Err(format!("the drag failed: {}", windows::core::Error::from_hresult(r))),
        }
    }
}

/// The one format offered: a `DROPFILES` file list in global memory.
fn hdrop_format() -> FORMATETC {
    FORMATETC {
        cfFormat: CF_HDROP.0,
        ptd: std::ptr::null_mut(),
        dwAspect: DVASPECT_CONTENT.0,
        lindex: -1,
        tymed: TYMED_HGLOBAL.0 as u32,
    }
}

/// The dragged file as OLE data.
#[implement(IDataObject)]
pub struct FileData {
    /// The `DROPFILES` block: the header, then the path in UTF-16, then two NULs.
    dropfiles: Vec<u8>,
}

impl FileData {
    pub fn new(path: &Path) -> Self {
        let header = std::mem::size_of::<DROPFILES>();
        let files = DROPFILES { pFiles: header as u32, pt: POINT::default(), fNC: false.into(), fWide: true.into() };
        // SAFETY: DROPFILES is plain data; its bytes are read for exactly its size.
        let mut dropfiles =
            unsafe { std::slice::from_raw_parts((&files as *const DROPFILES).cast::<u8>(), header) }.to_vec();
        for unit in path.as_os_str().encode_wide().chain([0, 0]) {
            dropfiles.extend_from_slice(&unit.to_le_bytes());
        }
        Self { dropfiles }
    }

    fn offers(format: &FORMATETC) -> HRESULT {
        if format.cfFormat != CF_HDROP.0 || format.dwAspect != DVASPECT_CONTENT.0 {
            DV_E_FORMATETC
        } else if format.tymed & TYMED_HGLOBAL.0 as u32 == 0 {
            DV_E_TYMED
        } else {
            S_OK
        }
    }
}

// The methods' signatures are COM's, fixed by the `windows` crate; OLE passes valid pointers.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
impl IDataObject_Impl for FileData_Impl {
    fn GetData(&self, format: *const FORMATETC) -> windows::core::Result<STGMEDIUM> {
        // SAFETY: OLE passes a valid FORMATETC; the global block is sized for the copy.
        unsafe {
            let format = format.as_ref().ok_or(DV_E_FORMATETC)?;
            FileData::offers(format).ok()?;
            let global = GlobalAlloc(GMEM_MOVEABLE | GMEM_ZEROINIT, self.dropfiles.len())?;
            let target = GlobalLock(global).cast::<u8>();
            if target.is_null() {
                return Err(E_OUTOFMEMORY.into());
            }
            std::ptr::copy_nonoverlapping(self.dropfiles.as_ptr(), target, self.dropfiles.len());
            // GlobalUnlock reports an "error" when the lock count reaches zero, as it does here.
            let _ = GlobalUnlock(global);
            Ok(STGMEDIUM {
                tymed: TYMED_HGLOBAL.0 as u32,
                u: STGMEDIUM_0 { hGlobal: global },
                pUnkForRelease: ManuallyDrop::new(None),
            })
        }
    }

    fn GetDataHere(&self, _format: *const FORMATETC, _medium: *mut STGMEDIUM) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn QueryGetData(&self, format: *const FORMATETC) -> HRESULT {
        // SAFETY: OLE passes a valid FORMATETC or null.
        match unsafe { format.as_ref() } {
            Some(format) => FileData::offers(format),
            None => DV_E_FORMATETC,
        }
    }

    fn GetCanonicalFormatEtc(&self, _format_in: *const FORMATETC, format_out: *mut FORMATETC) -> HRESULT {
        // SAFETY: OLE passes a writable FORMATETC or null.
        if let Some(out) = unsafe { format_out.as_mut() } {
            out.ptd = std::ptr::null_mut();
        }
        DATA_S_SAMEFORMATETC
    }

    fn SetData(
        &self,
        _format: *const FORMATETC,
        _medium: *const STGMEDIUM,
        _release: BOOL,
    ) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn EnumFormatEtc(&self, direction: u32) -> windows::core::Result<IEnumFORMATETC> {
        if direction != DATADIR_GET.0 as u32 {
            return Err(E_NOTIMPL.into());
        }
        // SAFETY: the shell copies the array.
        unsafe { SHCreateStdEnumFmtEtc(&[hdrop_format()]) }
    }

    fn DAdvise(&self, _format: *const FORMATETC, _advf: u32, _sink: Ref<IAdviseSink>) -> windows::core::Result<u32> {
        Err(OLE_E_ADVISENOTSUPPORTED.into())
    }

    fn DUnadvise(&self, _connection: u32) -> windows::core::Result<()> {
        Err(OLE_E_ADVISENOTSUPPORTED.into())
    }

    fn EnumDAdvise(&self) -> windows::core::Result<IEnumSTATDATA> {
        Err(OLE_E_ADVISENOTSUPPORTED.into())
    }
}

/// Ends the drag with a drop when the left button is released and cancels it on Escape.
#[implement(IDropSource)]
struct DropSource;

impl IDropSource_Impl for DropSource_Impl {
    fn QueryContinueDrag(&self, escape_pressed: BOOL, keys: MODIFIERKEYS_FLAGS) -> HRESULT {
        if escape_pressed.as_bool() {
            DRAGDROP_S_CANCEL
        } else if keys.0 & MK_LBUTTON.0 == 0 {
            DRAGDROP_S_DROP
        } else {
            S_OK
        }
    }

    fn GiveFeedback(&self, _effect: DROPEFFECT) -> HRESULT {
        DRAGDROP_S_USEDEFAULTCURSORS
    }
}

#[cfg(test)]
mod tests;
