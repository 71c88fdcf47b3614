//! `rebar eval --task infill|uncond` as one call: the rows of [`crate::eval::quality`] scored
//! against the real tunes evaluated (and a second reference if given), the sampler's settings as
//! the engine applied them, and, for infilling, the piano-roll figure.

use std::path::Path;

use rebar_engine::engine::{revision_options, BarSelection, Engine, EngineError, InfillOptions};
use rebar_engine::melody::Melody;

use crate::eval::figure::infill_figure;
use crate::eval::quality::{evaluate_infill, evaluate_uncond, infill_selection, QualityReport, EVAL_BARS, INFILL_BARS};

/// Which of the paper's Table 1 rows to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QualityTask {
    /// Bars 5–12 of every 16-bar tune infilled, `options.variations` times each.
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

/// Runs `task` with `options` on the `test` tunes' first 16 bars and returns the report as JSON:
/// the task, the number of sequences, the sampler's settings and the quality figures. Infilling
/// also draws its figure to `figure`.
pub fn quality_report(
    engine: &Engine,
    task: QualityTask,
    options: &InfillOptions,
    test: &Reference,
    second: Option<&Reference>,
    figure: &Path,
) -> Result<serde_json::Value, EvalError> {
    let (name, sequences, evaluation, selection, options) = match task {
        QualityTask::Infill => {
            let report = evaluate_infill(engine, test.melodies, options)?;
            let columns: Vec<[&Melody; 4]> = report.examples.iter().map(|e| [&e[0], &e[1], &e[2], &e[3]]).collect();
            infill_figure(figure, &columns, INFILL_BARS)
                .map_err(|reason| EvalError::Figure { path: figure.display().to_string(), reason })?;
            let sequences = test.melodies.len() * options.variations;
            ("infill", sequences, report.evaluation, infill_selection(), options.clone())
        }
        QualityTask::Uncond { samples } => {
            let options = InfillOptions { variations: 1, ..options.clone() };
            let evaluation = evaluate_uncond(engine, test.melodies, samples, &options)?;
            ("uncond", samples, evaluation, BarSelection::all(EVAL_BARS), options)
        }
    };
    let quality = QualityReport::new(
        &evaluation,
        (test.melodies, format!("test: {}", test.words)),
        second.map(|second| (second.melodies, format!("second: {}", second.words))),
    );
    let mut report = serde_json::json!({
        "task": name,
        "n_sequences": sequences,
        "sampler": sampler_settings(engine, &options, &selection),
    });
    // The quality figures beside the task's own fields, at the top level.
    if let (Some(report), serde_json::Value::Object(quality)) =
        (report.as_object_mut(), serde_json::to_value(&quality)?)
    {
        report.extend(quality);
    }
    Ok(report)
}

/// The sampler's settings for `options` on `selection` of a 16-bar clip, as the engine applies
/// them (calibrated values resolved), and those of generation's revision pass where it runs.
pub fn sampler_settings(engine: &Engine, options: &InfillOptions, selection: &BarSelection) -> serde_json::Value {
    let sampler = options.sampler;
    let applied = engine.applied(options, &selection.segments_of_clip(EVAL_BARS));
    serde_json::json!({
        "kind": format!("{sampler:?}"),
        "steps": sampler.evaluations(&engine.prior.schedule),
        "resample": options.resample,
        "guidance": options.guidance,
        "known": format!("{:?}", options.known),
        "clean_steps": options.clean_steps,
        "context_guidance": applied.context_guidance,
        "repeats": format!("{:?}", options.repeats),
        "repeat_offset": applied.repeat_offset,
        "repeat_distance_offsets": applied.repeat_distance_offsets,
        "redraw_copies": applied.redraw_copies,
        "prior_trained_with_clean_context": engine.prior.model.config.clean_context,
        "temperature": options.temperature,
        "noise_scale": applied.noise_scale,
        "opening_noise_scale": applied.opening_noise_scale,
        "opening_steps": InfillOptions::OPENING_STEPS,
        "interval_weight": engine.vae.applied_interval_weight(options.interval_weight),
        "revision": engine.revision_of(options, selection, EVAL_BARS).map(|middle| {
            let revision = engine.applied(&revision_options(options), &middle.segments_of_clip(EVAL_BARS));
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
