//! Components used on several pages.

pub mod entry_form;
pub mod sync_badge;
pub mod update_notice;
