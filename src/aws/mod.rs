//! Thin clients over aws-sdk-iam, aws-sdk-eks and aws-sdk-sts: they turn the
//! SDK's shapes into the operator's own (`RoleState`, ...) and its errors into
//! [`AwsError`], and do nothing else. Every call here is I/O.

pub mod api;
pub mod eks;
pub mod error;
pub mod iam;
pub mod identity;
pub mod retry;

pub use api::{EksApi, IamApi};
pub use eks::Eks;
pub use error::{AwsError, AwsErrorKind};
pub use iam::Iam;
