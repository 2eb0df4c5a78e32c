#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use corebank_ledger::{Account, AccountBalance, AccountFilter, Direction, QueryFilter, Transfer};
use proptest::prelude::*;

fn u128s() -> impl Strategy<Value = u128> {
    prop_oneof![
        Just(0u128),
        Just(1u128),
        Just(u128::MAX),
        Just(u128::from(u64::MAX)),
        Just(u128::from(u64::MAX) + 1),
        any::<u128>(),
    ]
}

prop_compose! {
    fn accounts()(
        ids in prop::array::uniform6(u128s()),
        user_data_64 in any::<u64>(),
        user_data_32 in any::<u32>(),
        ledger in any::<u32>(),
        code in any::<u16>(),
        flags in any::<u16>(),
        timestamp in any::<u64>(),
    ) -> Account {
        Account {
            id: ids[0],
            debits_pending: ids[1],
            debits_posted: ids[2],
            credits_pending: ids[3],
            credits_posted: ids[4],
            user_data_128: ids[5],
            user_data_64,
            user_data_32,
            ledger,
            code,
            flags: AccountFlags::from_bits(flags),
            timestamp,
        }
    }
}

prop_compose! {
    fn transfers()(
        ids in prop::array::uniform6(u128s()),
        user_data_64 in any::<u64>(),
        user_data_32 in any::<u32>(),
        timeout in any::<u32>(),
        ledger in any::<u32>(),
        code in any::<u16>(),
        flags in any::<u16>(),
        timestamp in any::<u64>(),
    ) -> Transfer {
        Transfer {
            id: ids[0],
            debit_account_id: ids[1],
            credit_account_id: ids[2],
            amount: ids[3],
            pending_id: ids[4],
            user_data_128: ids[5],
            user_data_64,
            user_data_32,
            timeout,
            ledger,
            code,
            flags: TransferFlags::from_bits(flags),
            timestamp,
        }
    }
}

fn directions() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Both),
        Just(Direction::Debits),
        Just(Direction::Credits)
    ]
}

prop_compose! {
    fn account_filters()(
        account_id in u128s(),
        user_data_128 in u128s(),
        user_data_64 in any::<u64>(),
        user_data_32 in any::<u32>(),
        code in any::<u16>(),
        timestamp_min in any::<u64>(),
        timestamp_max in any::<u64>(),
        limit in any::<u32>(),
        direction in directions(),
        reversed in any::<bool>(),
    ) -> AccountFilter {
        AccountFilter {
            account_id, user_data_128, user_data_64, user_data_32, code,
            timestamp_min, timestamp_max, limit, direction, reversed,
        }
    }
}

prop_compose! {
    fn query_filters()(
        user_data_128 in u128s(),
        user_data_64 in any::<u64>(),
        user_data_32 in any::<u32>(),
        ledger in any::<u32>(),
        code in any::<u16>(),
        timestamp_min in any::<u64>(),
        timestamp_max in any::<u64>(),
        limit in any::<u32>(),
        reversed in any::<bool>(),
    ) -> QueryFilter {
        QueryFilter {
            user_data_128, user_data_64, user_data_32, ledger, code,
            timestamp_min, timestamp_max, limit, reversed,
        }
    }
}

/// Encodes a message with prost and decodes it again, as the wire would.
fn over_the_wire<M: prost::Message + Default>(message: &M) -> M {
    M::decode(message.encode_to_vec().as_slice()).unwrap_or_default()
}

proptest! {
    #[test]
    fn u128_round_trips(value in u128s()) {
        let message = v1::U128::from(value);
        prop_assert_eq!(u128::from(message), value);
        prop_assert_eq!(u128::from(over_the_wire(&message)), value);
    }

    #[test]
    fn accounts_round_trip(account in accounts()) {
        let message = v1::Account::from(account);
        prop_assert_eq!(Account::try_from(&message), Ok(account));
        prop_assert_eq!(Account::try_from(over_the_wire(&message)), Ok(account));
    }

    #[test]
    fn transfers_round_trip(transfer in transfers()) {
        let message = v1::Transfer::from(transfer);
        prop_assert_eq!(Transfer::try_from(&message), Ok(transfer));
        prop_assert_eq!(Transfer::try_from(over_the_wire(&message)), Ok(transfer));
    }

    #[test]
    fn balances_round_trip(values in prop::array::uniform4(u128s()), timestamp in any::<u64>()) {
        let balance = AccountBalance {
            timestamp,
            debits_pending: values[0],
            debits_posted: values[1],
            credits_pending: values[2],
            credits_posted: values[3],
        };
        let message = v1::AccountBalance::from(balance);
        prop_assert_eq!(AccountBalance::from(&message), balance);
        prop_assert_eq!(AccountBalance::from(over_the_wire(&message)), balance);
    }

    #[test]
    fn account_filters_round_trip(filter in account_filters()) {
        let message = v1::AccountFilter::from(filter);
        prop_assert_eq!(AccountFilter::try_from(&message), Ok(filter));
        prop_assert_eq!(AccountFilter::try_from(over_the_wire(&message)), Ok(filter));
    }

    #[test]
    fn query_filters_round_trip(filter in query_filters()) {
        let message = v1::QueryFilter::from(filter);
        prop_assert_eq!(QueryFilter::try_from(&message), Ok(filter));
        prop_assert_eq!(QueryFilter::try_from(over_the_wire(&message)), Ok(filter));
    }

    #[test]
    fn codes_and_flags_above_u16_are_refused(value in 65_536u32..) {
        let transfer = v1::Transfer { code: value, ..Default::default() };
        let error = Transfer::try_from(&transfer).unwrap_err();
        prop_assert_eq!(error.field.as_str(), "code");
        prop_assert_eq!(&error.kind, &ConvertErrorKind::OutOfRange { found: value.into(), max: 65_535 });
        let account = v1::Account { flags: value, ..Default::default() };
        prop_assert_eq!(Account::try_from(&account).unwrap_err().field, "flags");
    }
}

#[test]
fn u128_halves_are_little_endian() {
    assert_eq!(v1::U128::from(5_000), v1::U128 { lo: 5_000, hi: 0 });
    assert_eq!(v1::U128::from(1u128 << 64), v1::U128 { lo: 0, hi: 1 });
    assert_eq!(
        v1::U128::from(u128::MAX),
        v1::U128 {
            lo: u64::MAX,
            hi: u64::MAX
        }
    );
    assert_eq!(u128::from(v1::U128 { lo: 2, hi: 3 }), 3 * (1u128 << 64) + 2);
    assert_eq!(u128_of(None), 0);
}

#[test]
fn absent_fields_are_zero() {
    assert_eq!(
        Account::try_from(v1::Account::default()),
        Ok(Account::default())
    );
    assert_eq!(
        Transfer::try_from(v1::Transfer::default()),
        Ok(Transfer::default())
    );
}

#[test]
fn servers_always_send_u128_fields() {
    let message = v1::Account::from(Account::default());
    assert_eq!(message.credits_posted, Some(v1::U128 { lo: 0, hi: 0 }));
}

#[test]
fn reserved_flag_bits_pass_through_to_the_ledger() {
    let message = v1::Transfer {
        flags: 0x100,
        ..Default::default()
    };
    let transfer = Transfer::try_from(&message).unwrap_or_default();
    assert!(transfer.flags.has_reserved_bits());
}

#[test]
fn unknown_direction_is_refused() {
    let filter = v1::AccountFilter {
        direction: 7,
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        AccountFilter::try_from(&filter),
        Err(ConvertError::new(
            "direction",
            ConvertErrorKind::UnknownEnumValue { value: 7 }
        ))
    );
    let error = account_filter_from_request(Some(&filter)).unwrap_err();
    assert_eq!(error.field, "filter.direction");
    assert_eq!(error.reason(), "unknown_enum_value");
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        error.to_string(),
        "filter.direction: 7 is not a known value"
    );
}

#[test]
fn directions_map_both_ways() {
    for (core, proto) in [
        (Direction::Both, v1::Direction::Both),
        (Direction::Debits, v1::Direction::Debits),
        (Direction::Credits, v1::Direction::Credits),
    ] {
        assert_eq!(v1::Direction::from(core), proto);
        assert_eq!(Direction::from(proto), core);
    }
    assert_eq!(v1::Direction::Both as i32, 0);
}

#[test]
fn missing_filters_are_refused() {
    let error = account_filter_from_request(None).unwrap_err();
    assert_eq!(error.field, "filter");
    assert_eq!(error.reason(), "missing_field");
    assert_eq!(
        query_filter_from_request(None).unwrap_err().kind,
        ConvertErrorKind::Missing
    );
    let filter = v1::QueryFilter {
        code: 70_000,
        ..Default::default()
    };
    assert_eq!(
        query_filter_from_request(Some(&filter)).unwrap_err().field,
        "filter.code"
    );
}

#[test]
fn consistency_is_checked() {
    assert_eq!(consistency_from_request(1), Ok(v1::ReadConsistency::Stale));
    assert_eq!(
        consistency_from_request(0),
        Ok(v1::ReadConsistency::Linearizable)
    );
    assert_eq!(
        consistency_from_request(-1).unwrap_err().field,
        "consistency"
    );
}

#[test]
fn batch_errors_name_the_event() {
    let mut request = v1::CreateTransfersRequest {
        transfers: vec![v1::Transfer::default(); 3],
        ..Default::default()
    };
    request.transfers[2].flags = 1 << 16;
    let error = transfers_from_request(&request).unwrap_err();
    assert_eq!(error.field, "transfers[2].flags");
    assert_eq!(
        error.to_string(),
        "transfers[2].flags: 65536 is out of range (at most 65535 is allowed)"
    );

    let mut request = v1::CreateAccountsRequest {
        accounts: vec![v1::Account::default(); 2],
        ..Default::default()
    };
    request.accounts[1].code = u32::MAX;
    assert_eq!(
        accounts_from_request(&request).unwrap_err().field,
        "accounts[1].code"
    );
    request.accounts[1].code = 10;
    assert_eq!(accounts_from_request(&request).map(|a| a.len()), Ok(2));
}

#[test]
fn batches_are_limited_to_8190_events() {
    let request = v1::CreateTransfersRequest {
        transfers: vec![v1::Transfer::default(); BATCH_EVENTS_MAX],
        ..Default::default()
    };
    assert_eq!(
        transfers_from_request(&request).map(|t| t.len()),
        Ok(BATCH_EVENTS_MAX)
    );
    let request = v1::CreateTransfersRequest {
        transfers: vec![v1::Transfer::default(); BATCH_EVENTS_MAX + 1],
        ..Default::default()
    };
    let error = transfers_from_request(&request).unwrap_err();
    assert_eq!(error.code(), ErrorCode::TooManyEvents);
    assert_eq!(error.field, "transfers");
    assert_eq!(
        error.kind,
        ConvertErrorKind::TooManyEvents {
            count: 8_191,
            max: 8_190
        }
    );
    let request = v1::CreateAccountsRequest {
        accounts: vec![v1::Account::default(); BATCH_EVENTS_MAX + 1],
        ..Default::default()
    };
    assert_eq!(
        accounts_from_request(&request).unwrap_err().code(),
        ErrorCode::TooManyEvents
    );
    let ids = vec![v1::U128::from(1); BATCH_EVENTS_MAX + 1];
    assert_eq!(ids_from_request(&ids).unwrap_err().field, "ids");
    assert_eq!(ids_from_request(&ids[..2]), Ok(vec![1, 1]));
    assert_eq!(
        accounts_from_request(&v1::CreateAccountsRequest::default()),
        Ok(vec![])
    );
}

#[test]
fn every_result_code_round_trips() {
    for (index, result) in CreateTransferResult::ALL.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let event = EventResult {
            index,
            result: *result,
        };
        let message = v1::CreateTransferResult::from(event);
        assert_eq!(message.code, result.code());
        assert_eq!(message.name, result.as_str());
        assert_eq!(message.description, result.description());
        assert_eq!(EventResult::try_from(&message), Ok(event));
    }
    for result in CreateAccountResult::ALL {
        let event = EventResult {
            index: 9,
            result: *result,
        };
        let message = v1::CreateAccountResult::from(event);
        assert_eq!(message.name, result.as_str());
        assert_eq!(EventResult::try_from(&message), Ok(event));
    }
    let unknown = v1::CreateTransferResult {
        code: 999,
        ..Default::default()
    };
    assert_eq!(
        EventResult::<CreateTransferResult>::try_from(&unknown)
            .unwrap_err()
            .reason(),
        "unknown_result_code"
    );
    let unknown = v1::CreateAccountResult {
        code: 4,
        ..Default::default()
    };
    assert!(EventResult::<CreateAccountResult>::try_from(&unknown).is_err());
}

#[test]
fn responses_list_results_in_order() {
    let results = [
        EventResult {
            index: 1,
            result: CreateTransferResult::ExceedsCredits,
        },
        EventResult {
            index: 4,
            result: CreateTransferResult::Exists,
        },
    ];
    let response = create_transfers_response(1_000, &results);
    assert_eq!(response.timestamp, 1_000);
    assert_eq!(response.results.len(), 2);
    assert_eq!(response.results[0].name, "exceeds_credits");
    assert_eq!(response.results[0].code, 54);
    assert_eq!(response.results[1].index, 4);
    let response = create_accounts_response(
        7,
        &[EventResult {
            index: 0,
            result: CreateAccountResult::Exists,
        }],
    );
    assert_eq!(response.results[0].code, 21);
}

#[test]
fn account_numbers_are_parsed_with_typed_errors() {
    let number = account_number_field("to_account", "XC68 CORE 0001 0000 0010 00");
    assert_eq!(number.map(|n| n.account_id()), Ok(10_000_001_000));
    let error = account_number_field("to_account", "XC68CORE00010000001001").unwrap_err();
    assert_eq!(error.field, "to_account");
    assert_eq!(error.reason(), "bad_check_digits");
    assert_eq!(error.code(), ErrorCode::InvalidAccountNumber);
    assert!(error.to_string().starts_with("to_account: "));
}
