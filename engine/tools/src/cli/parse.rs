//! The command line's value parsers: every number is checked for being finite and in range before
//! anything runs, and an engine enum is chosen by its name.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use rebar_engine::engine::{Request, Tuning};

/// The name of `value` in an engine enum's table (see [`one_of`]), for a default.
pub fn name_of<T: PartialEq>(values: &'static [(&'static str, T, &'static str)], value: T) -> &'static str {
    values.iter().find(|(_, v, _)| *v == value).map_or("", |(name, ..)| *name)
}

/// A parser choosing one of an engine enum's values by name; `values` pairs each name with its
/// value and its help. The engine stays free of the command line's crate, so its enums name
/// themselves here.
pub fn one_of<T: Clone + Send + Sync + 'static>(
    values: &'static [(&'static str, T, &'static str)],
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(values.iter().map(|(name, _, help)| PossibleValue::new(*name).help(*help))).map(
        move |name| {
            let (_, value, _) = values.iter().find(|(n, ..)| *n == name).expect("clap accepts only the names listed");
            value.clone()
        },
    )
}

/// "A-B" or "A" as an inclusive range.
pub fn parse_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("{text:?} is not N or N-M"));
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(text)?, parse(text)?),
    };
    if first > last {
        return Err(format!("{text:?}: the range runs backwards"));
    }
    Ok((first, last))
}

/// A number that is finite and within `low..=high`; `what` says the range in words.
pub fn parse_number(text: &str, low: f64, high: f64, what: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() || !(low..=high).contains(&value) {
        return Err(format!("{text} is out of range: {what}"));
    }
    Ok(value)
}

/// A weight: a finite number of 0 or more.
pub fn parse_non_negative(text: &str) -> Result<f64, String> {
    parse_number(text, 0.0, f64::MAX, "it must be a finite number of 0 or more")
}

/// A fraction from 0 to 1.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    parse_number(text, 0.0, 1.0, "it must be a fraction from 0 to 1")
}

/// A noise scale or temperature, 0 to [`Tuning::MAX_NOISE_SCALE`].
pub fn parse_noise_scale(text: &str) -> Result<f64, String> {
    parse_number(text, 0.0, Tuning::MAX_NOISE_SCALE, "it must be a finite number from 0 to 100")
}

/// An offset on a repeat head logit, within ±[`Tuning::MAX_REPEAT_OFFSET`].
pub fn parse_repeat_offset(text: &str) -> Result<f64, String> {
    let max = Tuning::MAX_REPEAT_OFFSET;
    parse_number(text, -max, max, "it must be a finite number from -100 to 100")
}

/// A tempo in BPM.
pub fn parse_bpm(text: &str) -> Result<f64, String> {
    parse_number(text, 1.0, 1000.0, "a tempo must be from 1 to 1000 BPM")
}

/// How far to move along the density vector.
pub fn parse_density(text: &str) -> Result<f32, String> {
    Ok(parse_number(text, -100.0, 100.0, "it must be a finite number from -100 to 100")? as f32)
}

/// A count of variations, 1 to [`Request::MAX_USER_VARIATIONS`] (the plugin's range).
pub fn parse_variations(text: &str) -> Result<usize, String> {
    let max = Request::MAX_USER_VARIATIONS;
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: Rebar makes 1 to {max} variations at a time (as the plugin does)")),
    }
}

/// Rounds of redrawing copies, 0 to [`Tuning::MAX_ROUNDS`].
pub fn parse_rounds(text: &str) -> Result<usize, String> {
    let max = Tuning::MAX_ROUNDS;
    match text.trim().parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{text:?} is not a count from 0 to {max}")),
    }
}
