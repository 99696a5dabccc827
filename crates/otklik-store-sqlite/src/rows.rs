//! Conversions between SQLite values and domain types.

use std::str::FromStr;

use jiff::Timestamp;
use otklik_domain::clock::{from_micros, to_micros};
use rusqlite::Row;
use rusqlite::types::{FromSqlError, Value};

/// An id column as a UUID.
pub fn uuid_at(row: &Row<'_>, index: usize) -> rusqlite::Result<uuid::Uuid> {
    let bytes: [u8; 16] = row.get(index)?;
    Ok(uuid::Uuid::from_bytes(bytes))
}

/// A nullable id column.
pub fn opt_uuid_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<uuid::Uuid>> {
    let bytes: Option<[u8; 16]> = row.get(index)?;
    Ok(bytes.map(uuid::Uuid::from_bytes))
}

/// A microsecond column as a timestamp.
pub fn time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    Ok(from_micros(row.get(index)?))
}

/// A nullable microsecond column.
pub fn opt_time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(index)?.map(from_micros))
}

/// A text column parsed into a domain enum.
pub fn parse_at<T>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse::<T>().map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// A JSON array of UUID strings.
pub fn uuid_list_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<uuid::Uuid>> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// A conversion failure for values that parse but make no sense.
pub fn corrupt(index: usize, message: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        Box::new(FromSqlError::Other(message.to_owned().into())),
    )
}

/// An id as a bound value.
pub fn id_value(id: uuid::Uuid) -> Value {
    Value::Blob(id.as_bytes().to_vec())
}

/// An optional id as a bound value.
pub fn opt_id_value(id: Option<uuid::Uuid>) -> Value {
    id.map_or(Value::Null, id_value)
}

/// A timestamp as a bound value.
pub fn time_value(timestamp: Timestamp) -> Value {
    Value::Integer(to_micros(timestamp))
}

/// An optional timestamp as a bound value.
pub fn opt_time_value(timestamp: Option<Timestamp>) -> Value {
    timestamp.map_or(Value::Null, time_value)
}

/// `?, ?, ?` for `n` parameters.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// An optional id as a counter key: 16 zero bytes stand for "none" so the column can be part of
/// the primary key.
pub fn key_value(id: Option<uuid::Uuid>) -> Value {
    Value::Blob(id.unwrap_or(uuid::Uuid::nil()).as_bytes().to_vec())
}

/// A JSON array of strings (a chat site's origins, an agent's languages).
pub fn string_list_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// A chat site's working hours, stored as JSON.
pub fn working_hours_at(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<otklik_domain::chat::WorkingHours> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}
