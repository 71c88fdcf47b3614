/* LD_PRELOAD shim: fake ALSA sequencer for hosts that refuse to start without
 * /dev/snd/seq (e.g. Qtractor in a container without sound support).
 * Every snd_seq_t* entry point Qtractor uses is replaced; events written to
 * the "sequencer" are dropped, nothing is ever received. The queue clock runs
 * on wall-clock time so drift checks see a plausible tick position. */
#define _GNU_SOURCE
#include <alsa/asoundlib.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>

struct fake_seq { int pipefd[2]; int nports; };
static int g_client = 128;
static int g_running = 0;
static double g_t0 = 0, g_tick0 = 0;
static unsigned int g_tempo = 500000, g_ppq = 96;

struct q_status { int queue; int events; unsigned int tick; struct { unsigned int sec, nsec; } time; int running; int flags; char reserved[64]; };

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }
static double cur_tick(void) { return g_running ? g_tick0 + (now() - g_t0) * 1e6 / g_tempo * g_ppq : g_tick0; }

int snd_seq_open(snd_seq_t **h, const char *name, int streams, int mode) {
	struct fake_seq *s = calloc(1, sizeof *s);
	if (pipe(s->pipefd) < 0) return -errno;
	*h = (snd_seq_t *) s;
	fprintf(stderr, "[fakeseq] snd_seq_open(%s) -> fake client %d\n", name ? name : "", g_client);
	return 0;
}
int snd_seq_close(snd_seq_t *h) { struct fake_seq *s = (void *) h; close(s->pipefd[0]); close(s->pipefd[1]); free(s); return 0; }
int snd_seq_client_id(snd_seq_t *h) { return g_client; }
int snd_seq_set_client_name(snd_seq_t *h, const char *n) { return 0; }
int snd_seq_create_simple_port(snd_seq_t *h, const char *n, unsigned int caps, unsigned int type) { return ((struct fake_seq *) h)->nports++; }
int snd_seq_delete_simple_port(snd_seq_t *h, int port) { return 0; }
int snd_seq_alloc_queue(snd_seq_t *h) { return 0; }
int snd_seq_free_queue(snd_seq_t *h, int q) { return 0; }
int snd_seq_control_queue(snd_seq_t *h, int q, int type, int value, snd_seq_event_t *ev) {
	if (type == SND_SEQ_EVENT_START) { g_tick0 = 0; g_t0 = now(); g_running = 1; }
	else if (type == SND_SEQ_EVENT_CONTINUE) { g_t0 = now(); g_running = 1; }
	else if (type == SND_SEQ_EVENT_STOP) { g_tick0 = cur_tick(); g_running = 0; }
	return 0;
}
int snd_seq_get_queue_status(snd_seq_t *h, int q, snd_seq_queue_status_t *st) {
	struct q_status *s = (void *) st; memset(s, 0, sizeof *s);
	double t = cur_tick();
	s->queue = q; s->tick = (unsigned int) t; s->running = g_running; return 0;
}
int snd_seq_get_queue_tempo(snd_seq_t *h, int q, snd_seq_queue_tempo_t *t) {
	memset(t, 0, snd_seq_queue_tempo_sizeof());
	snd_seq_queue_tempo_set_tempo(t, g_tempo); snd_seq_queue_tempo_set_ppq(t, g_ppq);
	snd_seq_queue_tempo_set_skew(t, 0x10000); return 0;
}
int snd_seq_set_queue_tempo(snd_seq_t *h, int q, snd_seq_queue_tempo_t *t) {
	g_tick0 = cur_tick(); g_t0 = now();
	if (snd_seq_queue_tempo_get_tempo(t)) g_tempo = snd_seq_queue_tempo_get_tempo(t);
	if (snd_seq_queue_tempo_get_ppq(t)) g_ppq = snd_seq_queue_tempo_get_ppq(t);
	return 0;
}
int snd_seq_set_queue_timer(snd_seq_t *h, int q, snd_seq_queue_timer_t *t) { return 0; }
int snd_seq_event_output(snd_seq_t *h, snd_seq_event_t *ev) { return 0; }
int snd_seq_event_output_direct(snd_seq_t *h, snd_seq_event_t *ev) { return 0; }
int snd_seq_drain_output(snd_seq_t *h) { return 0; }
int snd_seq_drop_output(snd_seq_t *h) { return 0; }
int snd_seq_drop_input(snd_seq_t *h) { return 0; }
int snd_seq_remove_events(snd_seq_t *h, snd_seq_remove_events_t *r) { return 0; }
int snd_seq_event_input(snd_seq_t *h, snd_seq_event_t **ev) { *ev = NULL; return -EAGAIN; }
int snd_seq_event_input_pending(snd_seq_t *h, int fetch) { return 0; }
int snd_seq_poll_descriptors_count(snd_seq_t *h, short events) { return 1; }
int snd_seq_poll_descriptors(snd_seq_t *h, struct pollfd *p, unsigned int space, short events) {
	if (space < 1) return 0; p[0].fd = ((struct fake_seq *) h)->pipefd[0]; p[0].events = POLLIN; p[0].revents = 0; return 1;
}
int snd_seq_get_any_client_info(snd_seq_t *h, int c, snd_seq_client_info_t *i) { return -ENOENT; }
int snd_seq_get_any_port_info(snd_seq_t *h, int c, int p, snd_seq_port_info_t *i) { return -ENOENT; }
int snd_seq_get_port_info(snd_seq_t *h, int p, snd_seq_port_info_t *i) {
	/* Qtractor's MIDI bus open() needs this to succeed (it then turns timestamping on). */
	memset(i, 0, snd_seq_port_info_sizeof());
	snd_seq_port_info_set_client(i, g_client); snd_seq_port_info_set_port(i, p);
	return 0;
}
int snd_seq_set_port_info(snd_seq_t *h, int p, snd_seq_port_info_t *i) { return 0; }
int snd_seq_query_next_client(snd_seq_t *h, snd_seq_client_info_t *i) { return -ENOENT; }
int snd_seq_query_next_port(snd_seq_t *h, snd_seq_port_info_t *i) { return -ENOENT; }
int snd_seq_query_port_subscribers(snd_seq_t *h, snd_seq_query_subscribe_t *s) { return -ENOENT; }
int snd_seq_subscribe_port(snd_seq_t *h, snd_seq_port_subscribe_t *s) { return 0; }
int snd_seq_unsubscribe_port(snd_seq_t *h, snd_seq_port_subscribe_t *s) { return 0; }
