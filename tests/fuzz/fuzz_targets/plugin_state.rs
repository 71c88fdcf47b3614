//! Fuzzes what a host hands back when it opens a project: the bytes of Rebar's saved state.
//! They are read as nice-plug reads them (its JSON state: version, parameters, persisted
//! fields), the parameters and the session are restored into Rebar's parameters, and the session
//! is turned into what the audio thread plays. Any input may be refused or load as an empty
//! session; none may panic, and a session that loads must hold only valid clips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nice_plug::params::InternalParamMut;
use nice_plug::plugin::ParamValue;
use nice_plug::prelude::{ParamPtr, Params, PluginState};
use rebar_plugin::params::RebarParams;

fuzz_target!(|bytes: &[u8]| {
    let params = RebarParams::default();
    // The whole state, or only the session field's text (the part Rebar parses itself).
    let state = match serde_json::from_slice::<PluginState>(bytes) {
        Ok(state) => state,
        Err(_) => {
            let Ok(text) = std::str::from_utf8(bytes) else { return };
            PluginState {
                version: String::new(),
                params: Default::default(),
                fields: [("session".to_string(), text.to_string())].into(),
            }
        }
    };
    let by_id = params.param_map().into_iter().map(|(id, ptr, _)| (id, ptr)).collect::<Vec<_>>();
    for (id, value) in &state.params {
        let Some((_, ptr)) = by_id.iter().find(|(known, _)| known == id) else { continue };
        // SAFETY: the pointers come from `params`, which outlives this loop.
        unsafe {
            let _ = match (ptr, value) {
                (ParamPtr::FloatParam(p), ParamValue::F32(v)) => (**p)._internal_set_plain_value(*v),
                (ParamPtr::IntParam(p), ParamValue::I32(v)) => (**p)._internal_set_plain_value(*v),
                (ParamPtr::BoolParam(p), ParamValue::Bool(v)) => (**p)._internal_set_plain_value(*v),
                (ParamPtr::EnumParam(p), ParamValue::I32(v)) => (**p)._internal_set_plain_value(*v),
                (ParamPtr::EnumParam(p), ParamValue::String(v)) => (**p).set_from_id(v),
                _ => false,
            };
        }
    }
    params.deserialize_fields(&state.fields);

    let session = params.session.read();
    if let Some(clip) = &session.clip {
        assert!(clip.validate().is_ok(), "a loaded clip is valid");
    }
    for generation in &session.history {
        assert!(generation.clip.validate().is_ok(), "a loaded variation is valid");
    }
    let _ = session.playback();
    // What is saved again must load back to the same session.
    let saved = params.serialize_fields();
    let reloaded = RebarParams::default();
    reloaded.deserialize_fields(&saved);
    assert_eq!(*reloaded.session.read(), *session, "a loaded session saves and loads back unchanged");
});
