//! The macOS drag source: an AppKit dragging session carrying the file's URL, begun from
//! Rebar's own view, with an `NSDraggingSource` that reports how it ended.
//!
//! AppKit runs the session on the main thread's event loop, so [`begin_drag`] returns at once
//! and the outcome arrives on a channel. The source class is built at run time under a name
//! unique to this copy of the plugin binary: a host may load the CLAP and the VST3 (two copies of
//! the same code) into one process, and Objective-C class names are process-wide.

use std::ffi::{c_void, CString};
use std::path::Path;
use std::sync::OnceLock;

use crossbeam_channel::{bounded, Receiver, Sender};
use objc2::rc::Retained;
use objc2::runtime::{AnyClass, AnyObject, AnyProtocol, ClassBuilder, NSObject, ProtocolObject, Sel};
use objc2::{msg_send, sel, AnyThread, ClassType, MainThreadMarker};
use objc2_app_kit::{
    NSApplication, NSDragOperation, NSDraggingContext, NSDraggingItem, NSDraggingSource, NSEvent, NSEventModifierFlags,
    NSEventType, NSView, NSWorkspace,
};
use objc2_foundation::{NSArray, NSPoint, NSRect, NSSize, NSString, NSURL};

use super::DragReport;

/// The ivar holding the boxed sender that the session's end reports on.
const SENDER_IVAR: &std::ffi::CStr = c"rebarDragReport";

/// Starts dragging `path` from `ns_view` (the editor's `NSView`, from baseview's window handle).
/// Must run on the main thread, inside the mouse drag that starts it.
pub fn begin_drag(path: &Path, ns_view: *mut c_void) -> Result<Receiver<DragReport>, String> {
    let main_thread = MainThreadMarker::new().ok_or("a drag can only start on the main thread")?;
    if ns_view.is_null() {
        return Err("the window has no view to drag from".into());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let path_text = path.to_str().ok_or("the file's path is not valid UTF-8")?;
    let (report, outcome) = bounded(1);
    // SAFETY: `ns_view` is the live NSView baseview created for this editor (its window handle),
    // used on the main thread while the editor draws. The source object's ivar is set before the
    // session can call it, and the session retains the source until it has ended.
    unsafe {
        let view = &*(ns_view as *const NSView);
        let path_string = NSString::from_str(path_text);
        let url = NSURL::fileURLWithPath(&path_string);
        let item = NSDraggingItem::initWithPasteboardWriter(NSDraggingItem::alloc(), ProtocolObject::from_ref(&*url));
        // The dragged image is the file's Finder icon under the pointer.
        let icon = NSWorkspace::sharedWorkspace().iconForFile(&path_string);
        let at = view.convertPoint_fromView(mouse_in_window(view), None);
        let frame = NSRect::new(NSPoint::new(at.x - 16.0, at.y - 16.0), NSSize::new(32.0, 32.0));
        item.setDraggingFrame_contents(frame, Some(&icon));

        let event = drag_event(main_thread, view).ok_or("no mouse event to start the drag from")?;
        let source: Retained<AnyObject> = msg_send![source_class(), new];
        let sender = Box::into_raw(Box::new((report, name)));
        *source_sender_ivar().load_ptr::<*mut c_void>(&source) = sender.cast();
        let as_source = &*(Retained::as_ptr(&source) as *const ProtocolObject<dyn NSDraggingSource>);
        view.beginDraggingSessionWithItems_event_source(&NSArray::from_retained_slice(&[item]), &event, as_source);
        // The source stays alive until the session has ended: `session_ended` autoreleases it.
        std::mem::forget(source);
    }
    Ok(outcome)
}

/// The pointer in the view's window's coordinates.
fn mouse_in_window(view: &NSView) -> NSPoint {
    view.window().map_or(NSPoint::new(0.0, 0.0), |window| window.mouseLocationOutsideOfEventStream())
}

/// The mouse event the drag starts from: the application's current event when it is the
/// button's drag or press, else one made for the pointer's position in the view's window (the
/// editor draws on a timer, so the current event may be the timer's).
fn drag_event(main_thread: MainThreadMarker, view: &NSView) -> Option<Retained<NSEvent>> {
    let application = NSApplication::sharedApplication(main_thread);
    if let Some(current) = application.currentEvent() {
        let kind = current.r#type();
        if kind == NSEventType::LeftMouseDragged || kind == NSEventType::LeftMouseDown {
            return Some(current);
        }
    }
    let window = view.window()?;
    NSEvent::mouseEventWithType_location_modifierFlags_timestamp_windowNumber_context_eventNumber_clickCount_pressure(
        NSEventType::LeftMouseDragged,
        window.mouseLocationOutsideOfEventStream(),
        NSEventModifierFlags::empty(),
        0.0,
        window.windowNumber(),
        None,
        0,
        1,
        1.0,
    )
}

/// `draggingSession:sourceOperationMaskForDraggingContext:` — the file may be copied.
extern "C-unwind" fn operation_mask(
    _this: &AnyObject,
    _cmd: Sel,
    _session: *mut AnyObject,
    _context: NSDraggingContext,
) -> NSDragOperation {
    NSDragOperation::Copy
}

/// `draggingSession:endedAtPoint:operation:` — reports the outcome once, frees the sender and
/// lets the source go.
extern "C-unwind" fn session_ended(
    this: &AnyObject,
    _cmd: Sel,
    _session: *mut AnyObject,
    _at: NSPoint,
    operation: NSDragOperation,
) {
    // SAFETY: the ivar holds null or the box `begin_drag` leaked, taken here exactly once.
    unsafe {
        let slot = source_sender_ivar().load_ptr::<*mut c_void>(this);
        let sender = std::mem::replace(&mut *slot, std::ptr::null_mut()) as *mut (Sender<DragReport>, String);
        if sender.is_null() {
            return;
        }
        let (report, name) = *Box::from_raw(sender);
        let outcome = if operation == NSDragOperation::None {
            Err(format!("nothing took {name}; it stays in the export folder"))
        } else {
            Ok(format!("dropped {name}"))
        };
        let _ = report.try_send(outcome);
        // Balances the reference `begin_drag` kept for the session.
        let _: *mut AnyObject = msg_send![this, autorelease];
    }
}

/// The drag source class, built once per copy of the binary.
fn source_class() -> &'static AnyClass {
    static CLASS: OnceLock<usize> = OnceLock::new();
    let class = *CLASS.get_or_init(|| {
        // A static's address differs between two loaded copies of this binary.
        let name = CString::new(format!("RebarDragSource_{:p}", &CLASS)).expect("no NUL in a formatted address");
        let mut builder = ClassBuilder::new(&name, NSObject::class()).expect("the class name is unique to this binary");
        builder.add_ivar::<*mut c_void>(SENDER_IVAR);
        if let Some(protocol) = AnyProtocol::get(c"NSDraggingSource") {
            builder.add_protocol(protocol);
        }
        // SAFETY: the functions' signatures match the selectors' Objective-C types.
        unsafe {
            builder.add_method(
                sel!(draggingSession:sourceOperationMaskForDraggingContext:),
                operation_mask as extern "C-unwind" fn(_, _, _, _) -> _,
            );
            builder.add_method(
                sel!(draggingSession:endedAtPoint:operation:),
                session_ended as extern "C-unwind" fn(_, _, _, _, _),
            );
        }
        builder.register() as *const AnyClass as usize
    });
    // SAFETY: registered classes live for the rest of the process.
    unsafe { &*(class as *const AnyClass) }
}

fn source_sender_ivar() -> &'static objc2::runtime::Ivar {
    source_class().instance_variable(SENDER_IVAR).expect("the class has the ivar")
}
