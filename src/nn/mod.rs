//! Just enough to train: layers, data, optimizers, learning-rate schedules, a training loop and
//! checkpoints that resume bit for bit.

pub mod checkpoint;
pub mod data;
pub mod linear;
pub mod lipconvnet;
pub mod optim;
pub mod schedule;
pub mod train;
