//! Identifier newtypes. Each wraps a UUID, prints as its hyphenated form and parses back.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An identifier that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct IdError {
    /// Which kind of id was expected.
    pub kind: &'static str,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// Builds the id from 16 random bytes supplied by the caller (the core draws no
            /// randomness itself).
            pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self).map_err(|_| IdError { kind: $kind })
            }
        }
    };
}

uuid_id!(
    /// One Automerge document (a chronology, a visit note, a plan version...).
    DocumentId,
    "document"
);
uuid_id!(
    /// A case: one person under supervision, with its allocations and documents.
    CaseId,
    "case"
);
uuid_id!(
    /// A device (a browser profile on a tablet or laptop, or a native test client).
    DeviceId,
    "device"
);
uuid_id!(
    /// A member of staff.
    StaffId,
    "staff"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prints_and_parses_back() {
        let id = DocumentId::from_random_bytes([7; 16]);
        assert_eq!(id.to_string().parse::<DocumentId>(), Ok(id));
    }

    #[test]
    fn a_bad_id_names_its_kind() {
        let err = "nope".parse::<CaseId>().unwrap_err();
        assert_eq!(err.to_string(), "not a valid case id");
    }
}
