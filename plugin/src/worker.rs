//! The background worker: owns the engine, loads its weights on first use (so a host scans and
//! opens Rebar fast), and runs [`Engine::infill`] off the audio thread.
//!
//! Traffic with the audio thread goes over bounded crossbeam channels and never allocates on
//! that side:
//! - the audio thread fills a preallocated clip buffer with each captured pass and `try_send`s
//!   it here; the worker copies it into the session and sends the buffer back for reuse;
//! - a Regenerate press arrives as a plain-data [`Request`];
//! - results go back as a whole new [`Playback`]; the one it replaces comes back here to be
//!   freed, so the audio thread never frees either.
//!
//! A failed or panicking generation becomes an error message in [`Status`]; it never unwinds
//! into the host.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};
use rebar_engine::engine::{self, BarSelection, Engine, Repeats};
use rebar_engine::melody::scale::Scale;

use crate::clip::{bar_is_selected, Clip, ClipNote, Region};
use crate::params::{KeyRoot, RepeatMode, ScaleKind};
use crate::schedule::Playback;
use crate::session::{Generation, Session};

/// Clip buffers circulating between the audio thread and the worker.
const CLIP_BUFFERS: usize = 2;

/// What a Regenerate press asks for: plain data, copied without allocating.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Request {
    /// Bit `b` set: regenerate bar `b` of the clip.
    pub selected_bars: u64,
    pub variations: u32,
    pub temperature: f32,
    pub seed: u64,
    pub key_root: KeyRoot,
    pub key_scale: ScaleKind,
    /// Let more new phrases repeat kept ones note for note (see [`engine::Request::stick_to_kept`]).
    pub stick_to_kept: bool,
    pub repeats: RepeatMode,
}

/// Messages to the worker.
pub enum ToWorker {
    /// A complete capture pass.
    Captured {
        notes: Vec<ClipNote>,
        region: Region,
        bpm: f64,
    },
    Regenerate(Request),
    /// A playback the audio thread no longer uses, to be freed here.
    Dispose(Box<Playback>),
}

/// What the GUI shows about the worker.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub working: bool,
    /// Milliseconds of the last successful generation, weights loading included.
    pub last_latency_ms: Option<f64>,
    pub last_error: Option<String>,
    /// Increases every time the session changes, so views can tell when to redraw.
    pub revision: u64,
}

/// State shared by the worker and the GUI (never touched by the audio thread).
pub struct Shared {
    pub session: Arc<RwLock<Session>>,
    pub status: Mutex<Status>,
}

/// The audio thread's ends of the channels.
pub struct AudioEnds {
    pub to_worker: Sender<ToWorker>,
    pub playbacks: Receiver<Box<Playback>>,
    pub empty_clips: Receiver<Vec<ClipNote>>,
    /// Set by the worker when the saved session changed (a new clip, new variations), so the
    /// audio thread can tell the host the project needs saving.
    pub session_changed: Arc<AtomicBool>,
}

/// A running worker thread; dropping it stops the thread after its current job.
pub struct Worker {
    to_worker: Option<Sender<ToWorker>>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker with clip buffers of `clip_capacity` notes; returns it and the audio
    /// thread's channel ends. The playback channel starts with the session's history.
    pub fn start(shared: Arc<Shared>, clip_capacity: usize) -> std::io::Result<(Self, AudioEnds)> {
        let (to_worker, requests) = bounded::<ToWorker>(64);
        let (playback_tx, playbacks) = bounded::<Box<Playback>>(4);
        let (empty_tx, empty_clips) = bounded::<Vec<ClipNote>>(CLIP_BUFFERS);
        for _ in 0..CLIP_BUFFERS {
            let _ = empty_tx.try_send(Vec::with_capacity(clip_capacity));
        }
        let published = shared.session.read().history.clone();
        let _ = playback_tx.try_send(Box::new(shared.session.read().playback()));
        let cancel = Arc::new(AtomicBool::new(false));
        let session_changed = Arc::new(AtomicBool::new(false));
        let job = Job {
            shared,
            playback_tx,
            empty_tx,
            engine: None,
            cancel: cancel.clone(),
            published,
            session_changed: session_changed.clone(),
        };
        let thread = std::thread::Builder::new().name("rebar-worker".into()).spawn(move || job.run(requests))?;
        let ends = AudioEnds { to_worker: to_worker.clone(), playbacks, empty_clips, session_changed };
        Ok((Self { to_worker: Some(to_worker), cancel, thread: Some(thread) }, ends))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // The thread ends once every sender is gone; the audio ends go with the plugin.
        self.to_worker.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Job {
    shared: Arc<Shared>,
    playback_tx: Sender<Box<Playback>>,
    empty_tx: Sender<Vec<ClipNote>>,
    engine: Option<Engine>,
    cancel: Arc<AtomicBool>,
    /// The history the audio thread last got, to notice a project loaded while active.
    published: Vec<Generation>,
    /// See [`AudioEnds::session_changed`]. A session the host loaded is not a change to save.
    session_changed: Arc<AtomicBool>,
}

/// How often the worker looks for a session the host replaced (a project or preset load).
const STATE_POLL: Duration = Duration::from_millis(100);

impl Job {
    fn run(mut self, requests: Receiver<ToWorker>) {
        loop {
            let message = match requests.recv_timeout(STATE_POLL) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    self.publish_if_replaced();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match message {
                ToWorker::Captured { notes, region, bpm } => {
                    let clip = Clip { region, notes: notes.to_vec(), bpm };
                    let _ = self.empty_tx.try_send(notes);
                    let mut session = self.shared.session.write();
                    if session.clip.as_ref() != Some(&clip) {
                        session.clip = Some(clip);
                        drop(session);
                        self.shared.status.lock().revision += 1;
                        self.session_changed.store(true, Ordering::Relaxed);
                    }
                }
                ToWorker::Regenerate(request) => self.regenerate(request),
                ToWorker::Dispose(playback) => drop(playback),
            }
        }
    }

    /// The host may load a saved session while the plugin is active; nice-plug then writes it
    /// into the shared session without telling the plugin, so the worker republishes it.
    fn publish_if_replaced(&mut self) {
        let session = self.shared.session.read();
        if session.history != self.published {
            self.published = session.history.clone();
            let playback = session.playback();
            drop(session);
            let _ = self.playback_tx.try_send(Box::new(playback));
            self.shared.status.lock().revision += 1;
        }
    }

    fn regenerate(&mut self, request: Request) {
        self.shared.status.lock().working = true;
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.generate(&request)))
            .unwrap_or_else(|_| Err("the generator crashed; try again or reload Rebar".to_string()));
        let mut status = self.shared.status.lock();
        status.working = false;
        match outcome {
            Ok(generations) => {
                let playback = {
                    let mut session = self.shared.session.write();
                    session.push_generations(generations);
                    self.published = session.history.clone();
                    session.playback()
                };
                let _ = self.playback_tx.try_send(Box::new(playback));
                status.last_latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                nice_plug::nice_log!("Rebar regenerated in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
                status.last_error = None;
                status.revision += 1;
                self.session_changed.store(true, Ordering::Relaxed);
            }
            Err(message) => {
                nice_plug::nice_warn!("Rebar could not regenerate: {message}");
                status.last_error = Some(message);
            }
        }
    }

    fn generate(&mut self, request: &Request) -> Result<Vec<Generation>, String> {
        let (clip, earlier_presses) = {
            let session = self.shared.session.read();
            (session.clip.clone(), session.history.len() as u64)
        };
        let clip = clip.ok_or("nothing captured yet: play the clip through Rebar")?;
        // Every press brings new music, and the same project replays the same presses: the
        // seed parameter is offset by the variations already in the history.
        let seed = request.seed.wrapping_add(earlier_presses);
        if self.engine.is_none() {
            self.engine = Some(Engine::embedded().map_err(|e| format!("loading the models: {e}"))?);
        }
        let engine = self.engine.as_ref().expect("loaded above");
        let bars = clip.region.bars;
        let selection = BarSelection { bars: (0..bars).map(|b| bar_is_selected(request.selected_bars, b)).collect() };
        let engine_request = engine_request(request, selection.clone(), seed)?;
        let melodies =
            engine.infill(&clip.to_melody(), &engine_request, &self.cancel, &mut |_| {}).map_err(|e| e.to_string())?;
        let (velocity, channel) = clip.voice();
        Ok(melodies
            .iter()
            .enumerate()
            .map(|(i, melody)| Generation {
                clip: Clip {
                    region: clip.region,
                    notes: Clip::generated_notes(melody, |bar| selection.is_selected(bar), velocity, channel),
                    bpm: clip.bpm,
                },
                selected_bars: request.selected_bars,
                seed: seed.wrapping_add(i as u64),
            })
            .collect())
    }
}

/// The engine's request for a Regenerate press of `selection`, its seed already offset.
fn engine_request(request: &Request, selection: BarSelection, seed: u64) -> Result<engine::Request, String> {
    let key = match request.key_root.spelling() {
        Some(root) => {
            Some(format!("{root} {}", request.key_scale.spelling()).parse::<Scale>().map_err(|e| e.to_string())?)
        }
        None => None,
    };
    Ok(engine::Request {
        variations: request.variations.max(1) as usize,
        temperature: f64::from(request.temperature),
        seed,
        key,
        stick_to_kept: request.stick_to_kept,
        repeats: match request.repeats {
            RepeatMode::Drawn => Repeats::Drawn,
            RepeatMode::KeepForm => Repeats::KeepForm,
            RepeatMode::AllNew => Repeats::Off,
        },
        ..engine::Request::new(selection)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_asks_the_engine_for_what_the_controls_say() {
        let request = Request {
            selected_bars: 0b1100,
            variations: 3,
            temperature: 1.2,
            seed: 7,
            key_root: KeyRoot::D,
            key_scale: ScaleKind::Dorian,
            stick_to_kept: false,
            repeats: RepeatMode::Drawn,
        };
        let selection = BarSelection::range(2, 3, 4);
        let asked = engine_request(&request, selection.clone(), 9).unwrap();
        assert_eq!((asked.variations, asked.seed, &asked.selection), (3, 9, &selection));
        assert_eq!((asked.repeats, asked.stick_to_kept, asked.pitch_range), (Repeats::Drawn, false, None));
        assert!((asked.temperature - 1.2).abs() < 1e-6);
        assert_eq!(asked.key, Some("D dorian".parse::<Scale>().unwrap()));
        let sticking = Request { stick_to_kept: true, key_root: KeyRoot::Any, ..request };
        let sticking = engine_request(&sticking, selection.clone(), 9).unwrap();
        assert_eq!((sticking.stick_to_kept, sticking.key), (true, None));
        let forms = [(RepeatMode::KeepForm, Repeats::KeepForm), (RepeatMode::AllNew, Repeats::Off)];
        for (mode, repeats) in forms {
            assert_eq!(
                engine_request(&Request { repeats: mode, ..request }, selection.clone(), 9).unwrap().repeats,
                repeats
            );
        }
    }
}
