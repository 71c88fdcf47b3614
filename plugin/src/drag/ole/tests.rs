//! The OLE drag source under Wine: the data object read back as a drop target reads it, and
//! real drags with Wine's X11 driver (pointer pressed, moved and released with SendInput).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use windows::core::{w, PCWSTR};
use windows::Win32::Foundation::{HWND, POINTL, S_FALSE};
use windows::Win32::System::Ole::{IDropTarget, IDropTarget_Impl, RegisterDragDrop, ReleaseStgMedium, RevokeDragDrop};
use windows::Win32::UI::Input::KeyboardAndMouse::{
    SendInput, INPUT, INPUT_0, INPUT_MOUSE, MOUSEEVENTF_ABSOLUTE, MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP,
    MOUSEEVENTF_MOVE, MOUSEINPUT, MOUSE_EVENT_FLAGS,
};
use windows::Win32::UI::Shell::{DragQueryFileW, HDROP};
use windows::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DestroyWindow, DispatchMessageW, GetSystemMetrics, PeekMessageW, TranslateMessage, MSG, PM_REMOVE,
    SM_CXSCREEN, SM_CYSCREEN, WINDOW_STYLE, WS_EX_TOPMOST, WS_POPUP, WS_VISIBLE,
};

use super::*;
use crate::drag::DragReport;

/// The files in a data object's `CF_HDROP` list, read back the way a drop target reads them.
fn dropped_files(data: &IDataObject) -> Vec<String> {
    // SAFETY: the medium is the HGLOBAL GetData returns, released after reading.
    unsafe {
        let mut medium = data.GetData(&hdrop_format()).expect("the data object gives CF_HDROP");
        assert_eq!(medium.tymed, TYMED_HGLOBAL.0 as u32);
        let hdrop = HDROP(medium.u.hGlobal.0);
        let files = (0..DragQueryFileW(hdrop, u32::MAX, None))
            .map(|i| {
                let mut name = vec![0u16; 1024];
                let len = DragQueryFileW(hdrop, i, Some(&mut name)) as usize;
                String::from_utf16_lossy(&name[..len])
            })
            .collect();
        ReleaseStgMedium(&mut medium);
        files
    }
}

#[test]
fn the_data_object_offers_the_file_as_a_windows_file_list_only() {
    let path = r"C:\Users\Musician\Music\Rebar\reel – bars 5-8.mid";
    let data: IDataObject = FileData::new(Path::new(path)).into();
    assert_eq!(dropped_files(&data), vec![path.to_string()]);
    // A second read gets its own copy: a drop target frees what it receives.
    assert_eq!(dropped_files(&data), vec![path.to_string()]);
    // SAFETY: plain COM calls with valid arguments.
    unsafe {
        assert_eq!(data.QueryGetData(&hdrop_format()), S_OK);
        let text = FORMATETC { cfFormat: 1, ..hdrop_format() }; // CF_TEXT
        assert_eq!(data.QueryGetData(&text), DV_E_FORMATETC);
        assert!(data.GetData(&text).is_err());
        let on_disk = FORMATETC { tymed: 2, ..hdrop_format() }; // TYMED_FILE
        assert_eq!(data.QueryGetData(&on_disk), DV_E_TYMED);

        let formats = data.EnumFormatEtc(DATADIR_GET.0 as u32).expect("formats enumerate");
        let mut listed = [FORMATETC::default(), FORMATETC::default()];
        let mut count = 0;
        assert_eq!(formats.Next(&mut listed, Some(&mut count)), S_FALSE, "fewer than asked for");
        assert_eq!(count, 1);
        assert_eq!(listed[0].cfFormat, CF_HDROP.0);
    }
}

/// A window's drop target, as a DAW's track area registers one: it takes files and records
/// the ones dropped.
#[implement(IDropTarget)]
struct TrackArea {
    dropped: Rc<RefCell<Vec<String>>>,
}

impl IDropTarget_Impl for TrackArea_Impl {
    fn DragEnter(
        &self,
        _data: Ref<IDataObject>,
        _keys: MODIFIERKEYS_FLAGS,
        _at: &POINTL,
        effect: *mut DROPEFFECT,
    ) -> windows::core::Result<()> {
        // SAFETY: OLE passes a writable effect.
        unsafe { *effect = DROPEFFECT_COPY };
        Ok(())
    }

    fn DragOver(&self, _keys: MODIFIERKEYS_FLAGS, _at: &POINTL, effect: *mut DROPEFFECT) -> windows::core::Result<()> {
        // SAFETY: as above.
        unsafe { *effect = DROPEFFECT_COPY };
        Ok(())
    }

    fn DragLeave(&self) -> windows::core::Result<()> {
        Ok(())
    }

    fn Drop(
        &self,
        data: Ref<IDataObject>,
        _keys: MODIFIERKEYS_FLAGS,
        _at: &POINTL,
        effect: *mut DROPEFFECT,
    ) -> windows::core::Result<()> {
        let data = data.ok()?;
        self.dropped.borrow_mut().extend(dropped_files(data));
        // SAFETY: as above.
        unsafe { *effect = DROPEFFECT_COPY };
        Ok(())
    }
}

/// One drag at a time: the tests share the pointer.
static ONE_DRAG: Mutex<()> = Mutex::new(());

/// Whether Wine draws with its X11 driver, which a real pointer needs. Under Wine the Unix
/// environment shows through, so DISPLAY says it.
fn has_display() -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        return true;
    }
    let required = std::env::var("REBAR_REQUIRE_XVFB").is_ok_and(|v| v == "1");
    assert!(!required, "REBAR_REQUIRE_XVFB=1 but there is no display: run under xvfb-run");
    eprintln!("skipping: a real drag needs an X server (xvfb-run); REBAR_REQUIRE_XVFB=1 fails instead");
    false
}

/// Presses, moves or releases the pointer as a mouse does, through the input queue.
fn mouse(flags: MOUSE_EVENT_FLAGS, x: i32, y: i32) {
    // SAFETY: plain Win32 calls with a valid INPUT.
    unsafe {
        let (width, height) = (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN));
        let input = INPUT {
            r#type: INPUT_MOUSE,
            Anonymous: INPUT_0 {
                mi: MOUSEINPUT {
                    dx: x * 65535 / (width - 1),
                    dy: y * 65535 / (height - 1),
                    dwFlags: flags | MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE,
                    ..Default::default()
                },
            },
        };
        assert_eq!(SendInput(&[input], std::mem::size_of::<INPUT>() as i32), 1, "the input was queued");
    }
}

/// Handles this thread's window messages for a while.
fn pump_messages(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        // SAFETY: a standard message loop on this thread's queue.
        unsafe {
            let mut message = MSG::default();
            while PeekMessageW(&mut message, None, 0, 0, PM_REMOVE).as_bool() {
                let _ = TranslateMessage(&message);
                DispatchMessageW(&message);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A window on this thread that mouse clicks reach (a static control with `SS_NOTIFY`; a
/// plain one is transparent to the mouse).
fn window(title: PCWSTR, x: i32, y: i32) -> HWND {
    const SS_NOTIFY: u32 = 0x100;
    // SAFETY: a window of a system class, destroyed by the caller.
    unsafe {
        CreateWindowExW(
            WS_EX_TOPMOST,
            w!("STATIC"),
            title,
            WS_POPUP | WS_VISIBLE | WINDOW_STYLE(SS_NOTIFY),
            x,
            y,
            200,
            200,
            None,
            None,
            None,
            None,
        )
        .expect("a window")
    }
}

/// Windows on this thread for a drag: the editor, where the button goes down, and a track
/// area that takes files. Runs `drag` with the file once the button is down on the editor,
/// moving the pointer along `path` (then releasing it) from another thread meanwhile, while
/// this thread keeps handling its windows' messages. Returns what was dropped on the track.
fn drag_between_windows(
    path: &'static [(i32, i32)],
    drag: impl FnOnce(&Path) -> DragReport,
) -> (DragReport, Vec<String>) {
    let file = std::env::temp_dir().join("rebar ole drop.mid");
    std::fs::write(&file, b"MThd").expect("a temp file");
    // SAFETY: windows and a drop target on this thread, torn down before returning.
    let (report, dropped) = unsafe {
        OleInitialize(None).expect("OLE starts");
        let editor = window(w!("editor"), 0, 0);
        let track = window(w!("track area"), 300, 300);
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let target: IDropTarget = TrackArea { dropped: dropped.clone() }.into();
        RegisterDragDrop(track, &target).expect("the window takes drops");
        pump_messages(Duration::from_millis(300));

        mouse(MOUSEEVENTF_LEFTDOWN, 50, 50);
        pump_messages(Duration::from_millis(200));
        let hand = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            for &(x, y) in path {
                mouse(MOUSE_EVENT_FLAGS(0), x, y);
                std::thread::sleep(Duration::from_millis(40));
            }
            std::thread::sleep(Duration::from_millis(200));
            let &(x, y) = path.last().expect("the pointer goes somewhere");
            mouse(MOUSEEVENTF_LEFTUP, x, y);
        });
        let report = drag(&file);
        hand.join().expect("the pointer moved");
        pump_messages(Duration::from_millis(100));

        RevokeDragDrop(track).expect("revoked");
        let _ = DestroyWindow(track);
        let _ = DestroyWindow(editor);
        OleUninitialize();
        let dropped = dropped.borrow().clone();
        (report, dropped)
    };
    let _ = std::fs::remove_file(&file);
    (report, dropped)
}

const ONTO_THE_TRACK: &[(i32, i32)] = &[
    (85, 85),
    (120, 120),
    (155, 155),
    (190, 190),
    (225, 225),
    (260, 260),
    (295, 295),
    (330, 330),
    (365, 365),
    (400, 400),
];

/// A real drag under Wine's X11 driver: the button goes down on the editor, the pointer
/// moves in steps onto the track area and is released there.
#[test]
fn a_file_dragged_from_the_editor_onto_a_window_that_takes_files_lands_there() {
    let _one = ONE_DRAG.lock().unwrap_or_else(|e| e.into_inner());
    if !has_display() {
        return;
    }
    let (report, dropped) = drag_between_windows(ONTO_THE_TRACK, |file| {
        drag_file(file, current_thread()).map(|outcome| format!("{outcome:?}"))
    });
    assert_eq!(report, Ok("Dropped".to_string()));
    assert_eq!(dropped, vec![std::env::temp_dir().join("rebar ole drop.mid").to_string_lossy().into_owned()]);
}

/// The editor's path: [`FileDrag::start`] runs OLE's loop on a thread of its own, attached to
/// the editor thread's input, while the editor thread keeps handling messages. Under Wine
/// that loop sees the button but not the pointer moving, so the pointer is already over the
/// track area when the drag starts and is released there without moving.
#[test]
fn the_editors_drag_thread_drops_the_file_where_the_button_is_released() {
    let _one = ONE_DRAG.lock().unwrap_or_else(|e| e.into_inner());
    if !has_display() {
        return;
    }
    let (report, dropped) = drag_between_windows(&[(400, 400)], |file| {
        mouse(MOUSE_EVENT_FLAGS(0), 400, 400);
        pump_messages(Duration::from_millis(200));
        let mut drag = crate::drag::FileDrag::start(file.to_path_buf(), None).expect("the drag starts");
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            pump_messages(Duration::from_millis(20));
            if let Some(report) = drag.finished() {
                break report;
            }
            assert!(Instant::now() < until, "the drag did not end");
        }
    });
    assert_eq!(report, Ok("dropped rebar ole drop.mid".to_string()));
    assert_eq!(dropped.len(), 1);
}

/// With no button held, OLE's first question to the drop source ends the drag with a drop at
/// the pointer, where nothing is registered.
#[test]
fn a_drag_released_where_nothing_takes_files_is_refused() {
    let _one = ONE_DRAG.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::env::temp_dir().join("rebar ole nowhere.mid");
    std::fs::write(&file, b"MThd").expect("a temp file");
    assert_eq!(drag_file(&file, current_thread()), Ok(DragOutcome::Refused));
    let _ = std::fs::remove_file(file);
}
