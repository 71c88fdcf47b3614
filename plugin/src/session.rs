//! What Rebar saves with the host project: the captured clip and every generated variation.
//! Parameters (selection, chosen variation, mode) are saved by the host as parameters.
//!
//! Loading never fails: a saved session that does not parse or breaks an invariant (a note past
//! the clip end, a NaN, a pitch above 127) loads as an empty session, with a logged warning, so
//! a damaged project opens instead of crashing or playing garbage.

use serde::{Deserialize, Serialize};

use crate::clip::Clip;
use crate::params::MAX_HISTORY;
use crate::schedule::{Playback, Variation};

/// Bumped when the saved layout changes.
const VERSION: u32 = 1;

/// One generated variation: the notes of its selected bars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated notes only, on the clip's region.
    pub clip: Clip,
    /// Bit `b` set: bar `b` was regenerated.
    pub selected_bars: u64,
    pub seed: u64,
}

/// The captured clip and the variation history, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    pub clip: Option<Clip>,
    pub history: Vec<Generation>,
}

/// The saved layout: the session stamped with [`VERSION`], which is written on every save
/// rather than stored, so a fresh (default) session saves a version that loads back.
#[derive(Serialize, Deserialize)]
struct Saved<C, H> {
    version: u32,
    clip: C,
    history: H,
}

impl Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Saved { version: VERSION, clip: &self.clip, history: &self.history }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Session::from_saved(value).unwrap_or_else(|reason| {
            nice_plug::nice_warn!("Rebar: the saved session is damaged ({reason}); starting empty");
            Session::default()
        }))
    }
}

impl Session {
    fn from_saved(value: serde_json::Value) -> Result<Self, String> {
        let saved: Saved<Option<Clip>, Vec<Generation>> = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if saved.version != VERSION {
            return Err(format!("version {} is not {VERSION}", saved.version));
        }
        if let Some(clip) = &saved.clip {
            clip.validate().map_err(|e| format!("clip: {e}"))?;
        }
        if saved.history.len() > MAX_HISTORY as usize {
            return Err(format!("{} variations, at most {MAX_HISTORY} are kept", saved.history.len()));
        }
        for (i, generation) in saved.history.iter().enumerate() {
            generation.clip.validate().map_err(|e| format!("variation {}: {e}", i + 1))?;
        }
        Ok(Session { clip: saved.clip, history: saved.history })
    }

    /// Adds variations, dropping the oldest beyond [`MAX_HISTORY`].
    pub fn push_generations(&mut self, generations: impl IntoIterator<Item = Generation>) {
        self.history.extend(generations);
        let excess = self.history.len().saturating_sub(MAX_HISTORY as usize);
        self.history.drain(..excess);
    }

    /// Everything the audio thread needs to play the history.
    pub fn playback(&self) -> Playback {
        Playback {
            variations: self
                .history
                .iter()
                .map(|g| Variation::new(g.clip.region, g.selected_bars, &g.clip.notes))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{ClipNote, Region};

    fn session() -> Session {
        let region = Region { start_beats: 0.0, bars: 4 };
        let note = ClipNote { start: 1.0, length: 0.5, pitch: 62, velocity: 0.7, channel: 0 };
        let clip = Clip { region, notes: vec![note], bpm: 96.0 };
        Session { clip: Some(clip.clone()), history: vec![Generation { clip, selected_bars: 0b10, seed: 3 }] }
    }

    #[test]
    fn a_session_survives_save_and_load_exactly() {
        let saved = serde_json::to_string(&session()).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&saved).unwrap(), session());
    }

    #[test]
    fn an_empty_session_survives_save_and_load() {
        let saved = serde_json::to_value(Session::default()).unwrap();
        assert_eq!(Session::from_saved(saved), Ok(Session::default()));
    }

    #[test]
    fn a_damaged_session_loads_empty() {
        let mut broken = serde_json::to_value(session()).unwrap();
        broken["clip"]["notes"][0]["start"] = serde_json::json!(99.0);
        assert_eq!(serde_json::from_value::<Session>(broken).unwrap(), Session::default());
        for text in [r#"{"version": 1}"#, r#"[1, 2, 3]"#, r#""text""#, r#"{"version": 7, "clip": null, "history": []}"#]
        {
            assert_eq!(serde_json::from_str::<Session>(text).unwrap(), Session::default(), "{text}");
        }
    }

    #[test]
    fn the_history_keeps_the_newest_variations() {
        let mut s = session();
        let one = s.history[0].clone();
        s.push_generations(std::iter::repeat_n(one, MAX_HISTORY as usize + 5));
        assert_eq!(s.history.len(), MAX_HISTORY as usize);
    }
}
