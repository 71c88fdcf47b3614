//! `rebar eval --task infill|uncond` as one call: the rows of [`crate::eval::quality`] scored
//! against the real tunes evaluated (and a second reference if given), the sampler's settings as
//! the engine applied them, and, for infilling, the piano-roll figure.

use std::path::Path;

use rebar_engine::engine::{BarSelection, Engine, EngineError, Request, Tuning};
use rebar_engine::melody::Melody;

use crate::eval::figure::infill_figure;
use crate::eval::quality::{evaluate_infill, evaluate_uncond, infill_selection, QualityReport, EVAL_BARS, INFILL_BARS};

/// Which of the paper's Table 1 rows to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QualityTask {
    /// Bars 5–12 of every 16-bar tune infilled, `request.variations` times each.
    Infill,
    /// This many sequences of 16 bars generated from scratch.
    Uncond { samples: usize },
}

/// A set of melodies to score against, and that set in words for the report.
pub struct Reference<'a> {
    pub melodies: &'a [Melody],
    pub words: String,
}

/// Why an evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("drawing {path}: {reason}")]
    Figure { path: String, reason: String },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Runs `task` with `request`'s controls (its selection is the task's) and the engine's tuning on
/// the `test` tunes' first 16 bars, and returns the report as JSON: the task, the number of
/// sequences, the sampler's settings and the quality figures. Infilling also draws its figure
/// to `figure`.
pub fn quality_report(
    engine: &Engine,
    task: QualityTask,
    request: &Request,
    test: &Reference,
    second: Option<&Reference>,
    figure: &Path,
) -> Result<serde_json::Value, EvalError> {
    let (name, sequences, evaluation, selection) = match task {
        QualityTask::Infill => {
            let report = evaluate_infill(engine, test.melodies, request)?;
            let columns: Vec<[&Melody; 4]> = report.examples.iter().map(|e| [&e[0], &e[1], &e[2], &e[3]]).collect();
            infill_figure(figure, &columns, INFILL_BARS)
                .map_err(|reason| EvalError::Figure { path: figure.display().to_string(), reason })?;
            let sequences = test.melodies.len() * request.variations;
            ("infill", sequences, report.evaluation, infill_selection())
        }
        QualityTask::Uncond { samples } => {
            let evaluation = evaluate_uncond(engine, test.melodies, samples, request)?;
            ("uncond", samples, evaluation, BarSelection::all(EVAL_BARS))
        }
    };
    let request = Request { selection, ..request.clone() };
    let quality = QualityReport::new(
        &evaluation,
        (test.melodies, format!("test: {}", test.words)),
        second.map(|second| (second.melodies, format!("second: {}", second.words))),
    );
    let mut report = serde_json::json!({
        "task": name,
        "n_sequences": sequences,
        "sampler": sampler_settings(engine, &request),
    });
    // The quality figures beside the task's own fields, at the top level.
    if let (Some(report), serde_json::Value::Object(quality)) =
        (report.as_object_mut(), serde_json::to_value(&quality)?)
    {
        report.extend(quality);
    }
    Ok(report)
}

/// The sampler's settings for `request` on a 16-bar clip, as the engine applies them (its
/// tuning for where each pass runs), and those of generation's revision pass where it runs.
pub fn sampler_settings(engine: &Engine, request: &Request) -> serde_json::Value {
    let tuning = engine.tuning();
    let sampler = tuning.sampler;
    let applied = engine.applied(request, &request.selection.segments_of_clip(EVAL_BARS));
    serde_json::json!({
        "kind": format!("{sampler:?}"),
        "steps": sampler.evaluations(&engine.prior.schedule),
        "context_guidance": applied.context_guidance,
        "repeats": format!("{:?}", request.repeats),
        "stick_to_kept": request.stick_to_kept,
        "repeat_offset": applied.repeat_offset,
        "repeat_distance_offsets": applied.repeat_distance_offsets,
        "redraw_copies": applied.redraw_copies,
        "prior_trained_with_clean_context": engine.prior.model.config.clean_context,
        "temperature": request.temperature,
        "noise_scale": applied.noise_scale,
        "opening_noise_scale": applied.opening_noise_scale,
        "opening_steps": Tuning::OPENING_STEPS,
        "interval_weight": engine.vae.applied_interval_weight(tuning.interval_weight),
        "revision": engine.revision_applied(request, EVAL_BARS).map(|(middle, revision)| {
            serde_json::json!({
                "bars": middle.selected().iter().map(|bar| bar + 1).collect::<Vec<_>>(),
                "context_guidance": revision.context_guidance,
                "repeat_offset": revision.repeat_offset,
                "noise_scale": revision.noise_scale,
                "opening_noise_scale": revision.opening_noise_scale,
            })
        }),
    })
}
