//! Flag sets for accounts and transfers: bit sets with stable snake_case names.

/// Defines a `u16` flag set with named bits, stable names and the mask of defined bits.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$fmeta:meta])* $flag:ident = $bit:expr, $text:literal $(| $alias:literal)* ; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u16);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: Self = Self(1 << $bit); )*

            /// Every flag with its wire name, in bit order.
            pub const ALL: &'static [(Self, &'static str)] = &[ $( (Self::$flag, $text), )* ];

            /// The bits that have a meaning; any other bit is reserved.
            pub const DEFINED_BITS: u16 = 0 $( | (1 << $bit) )*;

            pub const fn empty() -> Self {
                Self(0)
            }

            pub const fn from_bits(bits: u16) -> Self {
                Self(bits)
            }

            pub const fn bits(self) -> u16 {
                self.0
            }

            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            pub fn remove(&mut self, other: Self) {
                self.0 &= !other.0;
            }

            /// True when a bit outside [`Self::DEFINED_BITS`] is set.
            pub const fn has_reserved_bits(self) -> bool {
                self.0 & !Self::DEFINED_BITS != 0
            }

            /// The wire names of the set flags, in bit order (reserved bits are not named).
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::ALL.iter().filter(move |(flag, _)| self.contains(*flag)).map(|(_, name)| *name)
            }

            /// Looks a flag up by its wire name (or an accepted alias).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $text $(| $alias)* => Some(Self::$flag), )*
                    _ => None,
                }
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, other: Self) -> Self {
                self.union(other)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut list = f.debug_list();
                for name in self.names() {
                    list.entry(&name);
                }
                if self.has_reserved_bits() {
                    list.entry(&format_args!("reserved:{:#06x}", self.0 & !Self::DEFINED_BITS));
                }
                list.finish()
            }
        }
    };
}

flag_set! {
    /// Flags of an account.
    AccountFlags {
        /// Links this event to the next one in the batch: the chain applies all-or-nothing.
        LINKED = 0, "linked";
        /// `debits_pending + debits_posted` may never exceed `credits_posted`: the account
        /// cannot be overdrawn (customer deposit accounts).
        DEBITS_MUST_NOT_EXCEED_CREDITS = 1, "debits_must_not_exceed_credits";
        /// `credits_pending + credits_posted` may never exceed `debits_posted`.
        CREDITS_MUST_NOT_EXCEED_DEBITS = 2, "credits_must_not_exceed_debits";
        /// Keep the account's balance after every change, for `get_account_balances`.
        HISTORY = 3, "history";
        /// No new transfers may touch the account (set by a closing transfer).
        CLOSED = 4, "closed";
    }
}

flag_set! {
    /// Flags of a transfer.
    TransferFlags {
        /// Links this event to the next one in the batch: the chain applies all-or-nothing.
        LINKED = 0, "linked";
        /// Reserves the amount (moves it into the pending balances) until posted, voided or expired.
        PENDING = 1, "pending";
        /// Posts (all or part of) the pending transfer named by `pending_id`.
        POST_PENDING_TRANSFER = 2, "post_pending_transfer" | "post_pending";
        /// Voids the pending transfer named by `pending_id`, releasing its amount.
        VOID_PENDING_TRANSFER = 3, "void_pending_transfer" | "void_pending";
        /// Moves at most what the debit account has available (its credits minus debits).
        BALANCING_DEBIT = 4, "balancing_debit";
        /// Moves at most what the credit account can take (its debits minus credits).
        BALANCING_CREDIT = 5, "balancing_credit";
        /// Closes the debit account (the transfer must be pending; voiding it reopens).
        CLOSING_DEBIT = 6, "closing_debit";
        /// Closes the credit account (the transfer must be pending; voiding it reopens).
        CLOSING_CREDIT = 7, "closing_credit";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases() {
        for (flag, name) in TransferFlags::ALL {
            assert_eq!(TransferFlags::from_name(name), Some(*flag));
        }
        assert_eq!(
            TransferFlags::from_name("post_pending"),
            Some(TransferFlags::POST_PENDING_TRANSFER)
        );
        assert_eq!(
            TransferFlags::from_name("void_pending"),
            Some(TransferFlags::VOID_PENDING_TRANSFER)
        );
        assert_eq!(TransferFlags::from_name("nonsense"), None);
        let flags = AccountFlags::LINKED | AccountFlags::HISTORY;
        assert_eq!(flags.names().collect::<Vec<_>>(), ["linked", "history"]);
    }

    #[test]
    fn reserved_bits_are_detected() {
        assert!(!AccountFlags::from_bits(0b1_1111).has_reserved_bits());
        assert!(AccountFlags::from_bits(1 << 5).has_reserved_bits());
        assert!(!TransferFlags::from_bits(0xff).has_reserved_bits());
        assert!(TransferFlags::from_bits(0x100).has_reserved_bits());
    }
}
