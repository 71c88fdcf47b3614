//! AdamW (Loshchilov & Hutter, 2019) whose moment estimates can be saved and restored, so a
//! training run resumes exactly where it stopped. candle's own AdamW keeps them private.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Hyper-parameters of AdamW.
#[derive(Clone, Debug)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// AdamW over named variables.
///
/// The update runs as one fused loop over plain `f32` slices instead of a dozen candle tensor
/// ops: on two cores each elementwise tensor op over our 8M parameters costs about 20 ms, which
/// made the optimizer a third of a training step (measured; see BENCHMARKS.md).
pub struct AdamW {
    params: AdamWParams,
    vars: Vec<(String, Var)>,
    /// Master copy of each variable's values, updated in place and copied into the var.
    values: Vec<Vec<f32>>,
    first_moments: Vec<Vec<f32>>,
    second_moments: Vec<Vec<f32>>,
    /// Updates taken so far (for bias correction).
    pub step: u64,
}

impl AdamW {
    /// Takes the variables sorted by name, so state files line up across runs.
    pub fn new(mut vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let values: Vec<Vec<f32>> =
            vars.iter().map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1::<f32>()).collect::<Result<_>>()?;
        let zeros: Vec<Vec<f32>> = values.iter().map(|v| vec![0.0; v.len()]).collect();
        Ok(Self { params, vars, first_moments: zeros.clone(), second_moments: zeros, values, step: 0 })
    }

    /// The gradients of every variable as flat vectors (zeros where a variable got none).
    pub fn flat_grads(&self, grads: &GradStore) -> Result<Vec<Vec<f32>>> {
        self.vars
            .iter()
            .zip(&self.values)
            .map(|((_, var), values)| match grads.get(var) {
                Some(grad) => grad.flatten_all()?.to_vec1::<f32>(),
                None => Ok(vec![0.0; values.len()]),
            })
            .collect()
    }

    /// The current values of every variable, in name order.
    pub fn values(&self) -> &[Vec<f32>] {
        &self.values
    }

    /// The global L2 norm of flat gradients.
    pub fn grad_norm(flat_grads: &[Vec<f32>]) -> f64 {
        flat_grads.iter().flatten().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt()
    }

    /// One update at learning rate `lr`, with the gradients scaled by `grad_scale` (for clipping).
    pub fn step(&mut self, flat_grads: &[Vec<f32>], lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let p = &self.params;
        let (beta1, beta2) = (p.beta1 as f32, p.beta2 as f32);
        let correction1 = (1.0 - p.beta1.powi(self.step as i32)) as f32;
        let correction2 = (1.0 - p.beta2.powi(self.step as i32)) as f32;
        let (lr32, eps, decay, scale) =
            (lr as f32, p.eps as f32, (1.0 - lr * p.weight_decay) as f32, grad_scale as f32);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let (values, m, v) = (&mut self.values[i], &mut self.first_moments[i], &mut self.second_moments[i]);
            for (((x, m), v), &g) in values.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(&flat_grads[i]) {
                let g = g * scale;
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                let update = (*m / correction1) / ((*v / correction2).sqrt() + eps);
                *x = *x * decay - lr32 * update;
            }
            var.set(&Tensor::from_slice(values, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    /// The moment estimates, named `optimizer.m.<var>` and `optimizer.v.<var>`.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = HashMap::new();
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (kind, moment) in [("m", &self.first_moments[i]), ("v", &self.second_moments[i])] {
                state
                    .insert(format!("optimizer.{kind}.{name}"), Tensor::from_slice(moment, var.shape(), var.device())?);
            }
        }
        Ok(state)
    }

    /// Restores moment estimates saved by [`AdamW::state`], after the variables themselves were
    /// restored.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            self.values[i] = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            for (kind, moment) in [("m", &mut self.first_moments[i]), ("v", &mut self.second_moments[i])] {
                let key = format!("optimizer.{kind}.{name}");
                let saved =
                    tensors.get(&key).ok_or_else(|| candle_core::Error::Msg(format!("checkpoint lacks {key}")))?;
                if saved.shape() != var.shape() {
                    return Err(candle_core::Error::Msg(format!(
                        "{key} has shape {:?}, expected {:?}",
                        saved.dims(),
                        var.dims()
                    )));
                }
                *moment = saved.flatten_all()?.to_vec1::<f32>()?;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adamw_walks_a_quadratic_to_its_minimum() {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], AdamWParams::default()).unwrap();
        for _ in 0..500 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            let grads = opt.flat_grads(&loss.backward().unwrap()).unwrap();
            opt.step(&grads, 0.05, 1.0).unwrap();
        }
        let values = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(values.iter().all(|v| v.abs() < 1e-2), "{values:?}");
    }
}
