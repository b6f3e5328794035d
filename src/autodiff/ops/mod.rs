//! Operations on [`Var`](crate::Var): one file per op family, each with forward, backward and a
//! gradcheck test. Ops are inherent methods of `Var`, so they chain: `x.matmul(w).add_row(b).relu()`.

pub mod activation;
pub mod broadcast;
pub mod chain;
pub mod channel;
pub mod conv;
pub mod elementwise;
pub mod exp_conv;
pub mod loss;
pub mod matmul;
pub mod maxmin;
pub mod reduce;
pub mod shape;
