//! Writes the synthetic labelled sample `tests/data/synthetic.csv` (seeded, so the
//! checked-in file is reproducible): 4000 transfers, about 4% fraud.
//!
//! ```text
//! cargo run -p corebank-risk --example gen_sample > crates/risk/tests/data/synthetic.csv
//! ```
//! Legitimate transfers: log-normal amounts, daytime hours, mostly known payees, low
//! velocity, old accounts, short distances. Fraud: larger amounts, night hours, new
//! payees, bursts, young accounts, far away; each fraud row shows only some of these
//! signs, and some legitimate rows show one of them, so the task is not trivial.
//! `distance_km` is missing for 10% of rows; `channel` is categorical.

#![allow(clippy::float_arithmetic, clippy::cast_possible_truncation)]

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn main() {
    let mut r = Rng(20_261_122);
    println!("id,amount,hour,channel,new_payee,velocity_1h,account_age_days,distance_km,fraud");
    for id in 0..4000 {
        let fraud = r.unit() < 0.04;
        // how many of the fraud signs this row shows
        let sign = |r: &mut Rng, p_fraud: f64, p_legit: f64| {
            r.unit() < if fraud { p_fraud } else { p_legit }
        };
        let big = sign(&mut r, 0.7, 0.03);
        let amount = (if big { 6.5 } else { 3.5 } + r.normal() * 0.8).exp();
        let night = sign(&mut r, 0.6, 0.05);
        let hour = if night {
            (r.unit() * 5.0) as u32
        } else {
            7 + (r.unit() * 16.0) as u32
        };
        let channels = ["app", "web", "branch", "atm"];
        let channel = if fraud {
            channels[(r.unit() * 2.0) as usize]
        } else {
            channels[(r.unit() * 4.0) as usize]
        };
        let new_payee = u8::from(sign(&mut r, 0.8, 0.1));
        let burst = sign(&mut r, 0.5, 0.02);
        let velocity = if burst {
            5 + (r.unit() * 10.0) as u32
        } else {
            (r.unit() * 3.0) as u32
        };
        let young = sign(&mut r, 0.5, 0.05);
        let age = if young {
            1.0 + r.unit() * 30.0
        } else {
            60.0 + r.unit() * 3000.0
        };
        let far = sign(&mut r, 0.5, 0.03);
        let distance = if r.unit() < 0.1 {
            String::new()
        } else if far {
            format!("{:.1}", 500.0 + r.unit() * 5000.0)
        } else {
            format!("{:.1}", (r.normal() * 1.0 + 2.0).exp())
        };
        println!(
            "{id},{amount:.2},{hour},{channel},{new_payee},{velocity},{age:.0},{distance},{}",
            u8::from(fraud)
        );
    }
}
