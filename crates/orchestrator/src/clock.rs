//! Wall-clock time for records and names; durations use monotonic clocks elsewhere.

/// Now, as RFC 3339 in UTC to the second.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .expect("rounding to seconds cannot overflow")
        .to_string()
}
