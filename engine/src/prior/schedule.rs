//! The DDPM noise schedule of the seed paper (§2.1): a linear β schedule with N = 1000 steps
//! from β₁ = 1e-6 to β_N = 0.01, and WaveGrad's continuous noise level for training
//! (Chen et al., 2021, §3): √ᾱ ~ U(√ᾱ_{t−1}, √ᾱ_t) for a uniformly drawn step t.

use rand::Rng;

/// Steps of the full schedule.
pub const STEPS: usize = 1000;
/// β at the first step.
pub const BETA_START: f64 = 1e-6;
/// β at the last step.
pub const BETA_END: f64 = 0.01;

/// β_t, α_t and ᾱ_t for t = 1..=N (index 0 holds t = 1).
#[derive(Clone, Debug)]
pub struct NoiseSchedule {
    pub betas: Vec<f64>,
    pub alpha_bars: Vec<f64>,
}

impl Default for NoiseSchedule {
    fn default() -> Self {
        Self::linear(STEPS, BETA_START, BETA_END)
    }
}

impl NoiseSchedule {
    /// β rising linearly from `start` to `end` over `steps` steps.
    pub fn linear(steps: usize, start: f64, end: f64) -> Self {
        let betas: Vec<f64> =
            (0..steps).map(|i| start + (end - start) * i as f64 / (steps.max(2) - 1) as f64).collect();
        let mut alpha_bars = Vec::with_capacity(steps);
        let mut product = 1.0;
        for beta in &betas {
            product *= 1.0 - beta;
            alpha_bars.push(product);
        }
        Self { betas, alpha_bars }
    }

    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// ᾱ_t for t in 0..=N, where ᾱ_0 = 1 (no noise).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        if t == 0 {
            1.0
        } else {
            self.alpha_bars[t - 1]
        }
    }

    /// β_t for t in 1..=N.
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[t - 1]
    }

    /// A training noise level: t ~ U{1..N}, then √ᾱ ~ U(√ᾱ_t, √ᾱ_{t−1}).
    pub fn sample_sqrt_alpha_bar(&self, rng: &mut impl Rng) -> f64 {
        let t = rng.random_range(1..=self.steps());
        let (low, high) = (self.alpha_bar(t).sqrt(), self.alpha_bar(t - 1).sqrt());
        low + (high - low) * rng.random::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_schedule_ends_nearly_at_pure_noise() {
        let schedule = NoiseSchedule::default();
        assert_eq!(schedule.steps(), 1000);
        assert!((schedule.beta(1) - 1e-6).abs() < 1e-15 && (schedule.beta(1000) - 0.01).abs() < 1e-12);
        // ᾱ_N = Π(1 − β) ≈ exp(−Σβ) ≈ exp(−5.0).
        assert!((schedule.alpha_bar(1000) - (-5.0005f64).exp()).abs() < 2e-4, "{}", schedule.alpha_bar(1000));
    }

    #[test]
    fn training_levels_fall_between_neighbouring_steps() {
        let schedule = NoiseSchedule::default();
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let level = schedule.sample_sqrt_alpha_bar(&mut rng);
            assert!(level >= schedule.alpha_bar(1000).sqrt() && level <= 1.0);
        }
    }
}
