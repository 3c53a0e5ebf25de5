//! Dates and times as the app shows them (device local time).

fn date_of(ms: f64) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms))
}

/// `HH:MM`.
pub fn clock(ms: f64) -> String {
    let d = date_of(ms);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// `YYYY-MM-DD HH:MM`.
pub fn date_time(ms: i64) -> String {
    let d = date_of(ms as f64);
    format!(
        "{:04}-{:02}-{:02} {}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        clock(ms as f64)
    )
}
