//! An exponential moving average of the weights (Polyak averaging), which the exported model
//! uses instead of the last step's weights. DDPMs sample markedly better from averaged weights
//! (Ho et al., 2020, §4; Song & Ermon, 2020): the ε-loss is noisy at every noise level, and the
//! average smooths the last steps' jitter out of the network.

use std::collections::HashMap;

use candle_core::{Result, Tensor, Var};

/// The running average of every variable, in the optimizer's (name-sorted) order.
pub struct WeightAverage {
    decay: f64,
    values: Vec<Vec<f32>>,
}

impl WeightAverage {
    /// Starts the average at the current weights.
    pub fn new(decay: f64, current: &[Vec<f32>]) -> Self {
        Self { decay, values: current.to_vec() }
    }

    /// Folds in the weights after optimizer step `step` (1-based). The decay is warmed up as
    /// (1+s)/(10+s) so the early, random weights are forgotten quickly.
    pub fn update(&mut self, current: &[Vec<f32>], step: u64) {
        let warm = (1.0 + step as f64) / (10.0 + step as f64);
        let decay = self.decay.min(warm) as f32;
        for (average, now) in self.values.iter_mut().zip(current) {
            for (a, &x) in average.iter_mut().zip(now) {
                *a = decay * *a + (1.0 - decay) * x;
            }
        }
    }

    /// The averages as tensors named `average.<var>`, for checkpoints.
    pub fn state(&self, vars: &[(String, Var)]) -> Result<HashMap<String, Tensor>> {
        vars.iter()
            .zip(&self.values)
            .map(|((name, var), values)| {
                Ok((format!("average.{name}"), Tensor::from_slice(values, var.shape(), var.device())?))
            })
            .collect()
    }

    /// Restores averages saved by [`WeightAverage::state`]; a checkpoint from before averaging
    /// existed keeps the current weights as the start.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, vars: &[(String, Var)]) -> Result<()> {
        for ((name, var), values) in vars.iter().zip(self.values.iter_mut()) {
            if let Some(saved) = tensors.get(&format!("average.{name}")) {
                if saved.shape() != var.shape() {
                    return Err(candle_core::Error::Msg(format!("average.{name} has the wrong shape")));
                }
                *values = saved.flatten_all()?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }

    /// Writes the averages into the variables (for export).
    pub fn apply(&self, vars: &[(String, Var)]) -> Result<()> {
        for ((_, var), values) in vars.iter().zip(&self.values) {
            var.set(&Tensor::from_slice(values, var.shape(), var.device())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_tracks_a_constant_and_lags_a_jump() {
        let mut average = WeightAverage::new(0.9, &[vec![0.0]]);
        for step in 1..=200 {
            average.update(&[vec![1.0]], step);
        }
        assert!((average.values[0][0] - 1.0).abs() < 1e-4);
        average.update(&[vec![11.0]], 201);
        assert!((average.values[0][0] - 2.0).abs() < 1e-4, "{}", average.values[0][0]);
    }
}
