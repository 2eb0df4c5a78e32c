#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::HashSet;

#[test]
fn codes_are_unique_and_round_trip() {
    let mut names = HashSet::new();
    for code in ErrorCode::ALL {
        assert!(names.insert(code.as_str()), "duplicate {code}");
        assert_eq!(ErrorCode::from_name(code.as_str()), Some(*code));
        assert!(code.description().ends_with('.'));
        assert!(
            code.as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        );
    }
    assert_eq!(ErrorCode::from_name("nonsense"), None);
}

#[test]
fn grpc_codes_follow_the_table() {
    use tonic::Code;
    let expected = [
        (ErrorCode::Unauthenticated, Code::Unauthenticated),
        (ErrorCode::PermissionDenied, Code::PermissionDenied),
        (ErrorCode::BusyRetry, Code::ResourceExhausted),
        (ErrorCode::TooManyEvents, Code::InvalidArgument),
        (ErrorCode::InvalidArgument, Code::InvalidArgument),
        (ErrorCode::InvalidAccountNumber, Code::InvalidArgument),
        (ErrorCode::InvalidAmount, Code::InvalidArgument),
        (ErrorCode::UnknownCurrency, Code::InvalidArgument),
        (ErrorCode::AccountNotFound, Code::NotFound),
        (ErrorCode::InsufficientFunds, Code::FailedPrecondition),
        (ErrorCode::NotLeader, Code::Unavailable),
        (ErrorCode::Internal, Code::Internal),
    ];
    for (code, grpc) in expected {
        assert_eq!(code.grpc_code(), grpc, "{code}");
    }
}

/// The tables in errors.proto and docs/api.md list exactly the codes of
/// [`ErrorCode`], with the same gRPC status codes.
#[test]
fn documented_tables_match_the_code() {
    let proto = include_str!("../../proto/corebank/v1/errors.proto");
    let api = include_str!("../../../../docs/api.md");
    for (name, text) in [("errors.proto", proto), ("docs/api.md", api)] {
        let rows: Vec<(String, String)> = text
            .lines()
            .map(|line| line.trim_start_matches("//").trim())
            .filter(|line| line.starts_with("| "))
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.trim_matches('`');
                let grpc = cells.get(2)?;
                ErrorCode::from_name(code).map(|_| (code.to_owned(), (*grpc).to_owned()))
            })
            .collect();
        let documented: Vec<&str> = rows.iter().map(|(code, _)| code.as_str()).collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, all, "the error table of {name}");
        for (code, grpc) in &rows {
            let code = ErrorCode::from_name(code).unwrap_or(ErrorCode::Internal);
            let expected = format!("{:?}", code.grpc_code());
            let documented = grpc.trim_matches('`').replace('_', "").to_lowercase();
            assert_eq!(documented, expected.to_lowercase(), "{name}: {code}");
        }
    }
}

#[test]
fn statuses_carry_code_sentence_and_detail() {
    let error = ApiError::new(
        ErrorCode::InsufficientFunds,
        "account XC68CORE00010000001000 has 12.00 EUR available, 50.00 EUR were asked for",
    )
    .with_field("amount")
    .with_reason("exceeds_credits");
    let status = error.to_status();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status.message(), error.message);
    assert_eq!(
        status
            .metadata()
            .get(ERROR_CODE_KEY)
            .and_then(|v| v.to_str().ok()),
        Some("insufficient_funds")
    );
    assert_eq!(ApiError::from_status(&status), Some(error));
}

#[test]
fn details_are_a_google_rpc_status() {
    let status = ApiError::from_code(ErrorCode::BusyRetry).to_status();
    let rpc = RpcStatus::decode(status.details()).unwrap_or_default();
    assert_eq!(rpc.code, 8); // RESOURCE_EXHAUSTED
    assert_eq!(rpc.message, ErrorCode::BusyRetry.description());
    assert_eq!(rpc.details.len(), 1);
    assert_eq!(rpc.details[0].type_url, ERROR_DETAIL_TYPE_URL);
    let detail = v1::ErrorDetail::decode(rpc.details[0].value.as_slice()).unwrap_or_default();
    assert_eq!(detail.code, "busy_retry");
    assert_eq!(detail.message, rpc.message);
}

#[test]
fn not_leader_names_the_leader() {
    let status = ApiError::not_leader(Some("10.0.0.2:8080".to_owned())).to_status();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status
            .metadata()
            .get(LEADER_KEY)
            .and_then(|v| v.to_str().ok()),
        Some("10.0.0.2:8080")
    );
    let error = ApiError::from_status(&status);
    assert_eq!(
        error.and_then(|e| e.leader).as_deref(),
        Some("10.0.0.2:8080")
    );
    // An address that cannot be a header value is left out rather than panicking.
    let status = ApiError::not_leader(Some("bad\nvalue".to_owned())).to_status();
    assert!(status.metadata().get(LEADER_KEY).is_none());
    assert_eq!(
        ApiError::not_leader(None).to_status().code(),
        tonic::Code::Unavailable
    );
}

#[test]
fn foreign_statuses_are_not_corebank_errors() {
    assert_eq!(
        ApiError::from_status(&tonic::Status::unavailable("down")),
        None
    );
    // A code but garbage details: the code and message still come through.
    let mut status =
        tonic::Status::with_details(tonic::Code::NotFound, "gone", vec![0xff, 0xff, 0xff].into());
    status.metadata_mut().insert(
        ERROR_CODE_KEY,
        MetadataValue::from_static("account_not_found"),
    );
    let error = ApiError::from_status(&status);
    assert_eq!(
        error.as_ref().map(|e| e.code),
        Some(ErrorCode::AccountNotFound)
    );
    assert_eq!(error.map(|e| e.message), Some("gone".to_owned()));
}

#[test]
fn convert_errors_become_invalid_argument() {
    let error = crate::convert::transfers_from_request(&v1::CreateTransfersRequest {
        transfers: vec![v1::Transfer {
            code: 70_000,
            ..Default::default()
        }],
        ..Default::default()
    })
    .unwrap_err();
    let api = ApiError::from(error);
    assert_eq!(api.code, ErrorCode::InvalidArgument);
    assert_eq!(api.field, "transfers[0].code");
    assert_eq!(api.reason, "value_out_of_range");
    assert_eq!(
        tonic::Status::from(api).code(),
        tonic::Code::InvalidArgument
    );
}

#[test]
fn ledger_errors_map_to_codes() {
    let api = ApiError::from(FilterError::HistoryNotEnabled);
    assert_eq!(api.code, ErrorCode::FailedPrecondition);
    assert_eq!(api.reason, "history_not_enabled");
    let api = ApiError::from(FilterError::LimitMustNotBeZero);
    assert_eq!(
        (api.code, api.field.as_str()),
        (ErrorCode::InvalidArgument, "filter.limit")
    );
    let api = ApiError::from(BatchError::TooManyEvents { count: 9_000 });
    assert_eq!(api.code, ErrorCode::TooManyEvents);
    let api = ApiError::from(BatchError::TimestampOutOfRange);
    assert_eq!(api.code, ErrorCode::Internal);
}

#[test]
fn transfer_results_map_to_banking_codes() {
    use CreateTransferResult as R;
    assert_eq!(
        ErrorCode::for_transfer_result(R::ExceedsCredits),
        ErrorCode::InsufficientFunds
    );
    assert_eq!(
        ErrorCode::for_transfer_result(R::CreditAccountNotFound),
        ErrorCode::AccountNotFound
    );
    assert_eq!(
        ErrorCode::for_transfer_result(R::ExistsWithDifferentAmount),
        ErrorCode::IdempotencyConflict
    );
    assert_eq!(
        ErrorCode::for_transfer_result(R::PendingTransferExpired),
        ErrorCode::HoldNotActive
    );
    // Every result maps to a code that refuses with a 4xx-like gRPC status.
    for result in R::ALL {
        let code = ErrorCode::for_transfer_result(*result);
        assert_ne!(code, ErrorCode::Internal, "{result}");
        // Every exists_with_different_* is an idempotency conflict.
        if result.as_str().starts_with("exists_with_different") {
            assert_eq!(code, ErrorCode::IdempotencyConflict, "{result}");
        }
    }
}
