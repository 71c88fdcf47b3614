//! Dragging the exported clip out of the window onto a DAW track or a folder: the OS drag source
//! that baseview lacks.
//!
//! - Linux (X11): [`xdnd`], compiled and tested under Xvfb against a drop target.
//! - Windows: `ole`, OLE `DoDragDrop` with a `CF_HDROP` file list, tested under Wine only.
//! - macOS: `appkit`, an AppKit dragging session with the file's URL, type-checked only.
//!
//! On Linux and Windows a drag blocks until the button is released, so it runs on a thread of
//! its own; on macOS AppKit runs it on the main thread's event loop. Either way the outcome
//! arrives on a channel, and the window polls [`FileDrag::finished`] once per frame.

#[cfg(target_os = "macos")]
mod appkit;
#[cfg(windows)]
pub mod ole;
#[cfg(target_os = "linux")]
pub mod xdnd;

use std::path::PathBuf;

use crossbeam_channel::{Receiver, TryRecvError};
use raw_window_handle::RawWindowHandle;

/// The button's tooltip: what the drag does, and where that was tested.
pub const TOOLTIP: &str = if cfg!(target_os = "linux") {
    "Drag the clip with this variation onto a DAW track or a folder (tested on Linux, X11)"
} else if cfg!(windows) {
    "Drag the clip with this variation onto a DAW track or a folder (tested under Wine only, not on Windows itself)"
} else if cfg!(target_os = "macos") {
    "Drag the clip with this variation onto a DAW track or a folder (untested on macOS: if it fails, use Export .mid)"
} else {
    "Not available on this platform: use Export .mid and drag the file from the DAW's browser"
};

/// How a finished drag went, in words for the status line.
pub type DragReport = Result<String, String>;

/// A drag in progress.
pub struct FileDrag {
    outcome: Receiver<DragReport>,
}

impl FileDrag {
    /// Starts dragging `path` (an existing file) from the pointer's position. `window` is the
    /// editor's native window (baseview's handle), which macOS drags from.
    pub fn start(path: PathBuf, window: Option<RawWindowHandle>) -> Result<Self, String> {
        #[cfg(target_os = "macos")]
        {
            let ns_view = match window {
                Some(RawWindowHandle::AppKit(handle)) => handle.ns_view.as_ptr(),
                _ => return Err("the window has no AppKit view to drag from".into()),
            };
            Ok(Self { outcome: appkit::begin_drag(&path, ns_view)? })
        }
        #[cfg(any(target_os = "linux", windows))]
        {
            let _ = window;
            let (report, outcome) = crossbeam_channel::bounded(1);
            // OLE's drag loop reads the button from the input of the thread it was pressed on.
            #[cfg(windows)]
            let window_thread = ole::current_thread();
            std::thread::Builder::new()
                .name("rebar-drag".into())
                .spawn(move || {
                    #[cfg(windows)]
                    let result = run_windows_drag(&path, window_thread);
                    #[cfg(target_os = "linux")]
                    let result = run_linux_drag(&path);
                    let _ = report.send(result);
                })
                .map_err(|e| format!("could not start the drag: {e}"))?;
            Ok(Self { outcome })
        }
        #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
        {
            let _ = (path, window);
            Err("dragging out is not available on this platform: use Export .mid".into())
        }
    }

    /// The drag's result once it has ended; None while it is still in flight.
    pub fn finished(&mut self) -> Option<DragReport> {
        match self.outcome.try_recv() {
            Ok(report) => Some(report),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the drag ended without a result".into())),
        }
    }
}

#[cfg(windows)]
fn run_windows_drag(path: &std::path::Path, window_thread: u32) -> DragReport {
    use ole::DragOutcome;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match ole::drag_file(path, window_thread)? {
        DragOutcome::Dropped => Ok(format!("dropped {name}")),
        DragOutcome::Refused => Ok(format!("nothing took {name}; it stays in {}", parent(path))),
        DragOutcome::Cancelled => Ok(format!("drag cancelled; {name} stays in {}", parent(path))),
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

#[cfg(any(target_os = "linux", windows))]
fn parent(path: &std::path::Path) -> String {
    path.parent().map(|p| p.display().to_string()).unwrap_or_default()
}
