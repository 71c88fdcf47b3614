//! Dragging the exported clip out of the window onto a DAW track or a folder: the OS drag source
//! that baseview lacks.
//!
//! - Linux (X11): [`xdnd`], compiled and tested under Xvfb against a drop target.
//! - Windows (OLE `DoDragDrop`) and macOS (`NSDraggingSession`): not written; [`FileDrag::start`]
//!   says so and the window offers Export instead.
//!
//! A drag blocks until the button is released, so it runs on a thread of its own; the window
//! polls [`FileDrag::finished`] once per frame.

#[cfg(target_os = "linux")]
pub mod xdnd;

use std::path::PathBuf;
use std::thread::JoinHandle;

/// How a finished drag went, in words for the status line.
pub type DragReport = Result<String, String>;

/// A drag in progress.
pub struct FileDrag {
    thread: Option<JoinHandle<DragReport>>,
}

impl FileDrag {
    /// Starts dragging `path` (an existing file) from the pointer's position.
    pub fn start(path: PathBuf) -> Result<Self, String> {
        #[cfg(target_os = "linux")]
        {
            let thread = std::thread::Builder::new()
                .name("rebar-drag".into())
                .spawn(move || run_linux_drag(&path))
                .map_err(|e| format!("could not start the drag: {e}"))?;
            Ok(Self { thread: Some(thread) })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            Err("dragging out is not available on this platform yet: use Export .mid".into())
        }
    }

    /// The drag's result once it has ended; None while the button is still down.
    pub fn finished(&mut self) -> Option<DragReport> {
        if !self.thread.as_ref()?.is_finished() {
            return None;
        }
        let joined = self.thread.take()?.join();
        Some(joined.unwrap_or_else(|_| Err("the drag thread panicked".into())))
    }
}

#[cfg(target_os = "linux")]
fn run_linux_drag(path: &std::path::Path) -> DragReport {
    use xdnd::DragOutcome;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match xdnd::drag_uri_list(None, &xdnd::file_uri_list(path)) {
        Ok(DragOutcome::Dropped { .. }) => Ok(format!("dropped {name}")),
        Ok(DragOutcome::Refused { .. }) => Err(format!("the drop target refused {name}")),
        Ok(DragOutcome::Cancelled) => Ok(format!("drag cancelled; {name} stays in {}", parent(path))),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(target_os = "linux")]
fn parent(path: &std::path::Path) -> String {
    path.parent().map(|p| p.display().to_string()).unwrap_or_default()
}
