//! Operations on [`Var`](crate::Var): one file per op family, each with forward, backward and a
//! gradcheck test. Ops are inherent methods of `Var`, so they chain: `x.matmul(w).add_row(b).relu()`.

pub mod activation;
pub mod broadcast;
pub mod chain;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod reduce;
pub mod shape;
