//! Just enough to train: layers, initialisation, optimizers, schedules (in progress).
