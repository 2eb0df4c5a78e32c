//! What the bank offers: its currencies and its account products.
//!
//! These are the tables compiled into corebank (`corebank-money`'s currencies,
//! `corebank-banking`'s products), not replicated state: every process of one
//! corebank version has the same ones, and the registry publishes them so that apps
//! and other processes need not be rebuilt to learn them.

use corebank_banking::Product;
use corebank_money::Currency;

/// Every currency the bank holds, in the fixed order of `corebank-money`'s table.
pub fn currencies() -> &'static [Currency] {
    corebank_money::CURRENCIES
}

/// A kind of customer account, described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProductInfo {
    /// The product.
    pub product: Product,
    /// Its name: `current` or `savings`.
    pub name: &'static str,
    /// The ledger account code of its accounts.
    pub account_code: u16,
    /// A sentence for people.
    pub description: &'static str,
}

/// Every product the bank offers.
pub const PRODUCTS: [Product; 2] = [Product::Current, Product::Savings];

/// Every product, described.
pub fn products() -> [ProductInfo; 2] {
    PRODUCTS.map(|product| ProductInfo {
        product,
        name: product.name(),
        account_code: product.code(),
        description: match product {
            Product::Current => {
                "A current (checking) account for payments, cards and holds; it cannot be overdrawn."
            }
            Product::Savings => "A savings account; it cannot be overdrawn.",
        },
    })
}
