//! The HRO review schedule: a review is due three months after registration or after the last
//! review held, and is overdue from the day after it was due.

use crate::dates::Date;
use serde::{Deserialize, Serialize};

/// Months between reviews.
pub const REVIEW_INTERVAL_MONTHS: u32 = 3;

/// Days before the due date from which a review shows as due soon.
pub const DUE_SOON_DAYS: i64 = 14;

/// When the next review is due after registration or a review held on `from`.
pub fn next_review(from: Date) -> Date {
    from.add_months(REVIEW_INTERVAL_MONTHS)
}

/// Where a review stands on `today`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewStatus {
    /// Due in more than [`DUE_SOON_DAYS`] days.
    Scheduled {
        /// Days until it is due.
        days_left: i64,
    },
    /// Due within [`DUE_SOON_DAYS`] days, or today.
    DueSoon {
        /// Days until it is due (0: today).
        days_left: i64,
    },
    /// Past its due date.
    Overdue {
        /// Days since it was due (at least 1).
        days_late: i64,
    },
}

impl ReviewStatus {
    /// The status of a review due on `due`, seen on `today`.
    pub fn of(due: Date, today: Date) -> Self {
        let days_left = due.days_since_epoch() - today.days_since_epoch();
        if days_left < 0 {
            ReviewStatus::Overdue {
                days_late: -days_left,
            }
        } else if days_left <= DUE_SOON_DAYS {
            ReviewStatus::DueSoon { days_left }
        } else {
            ReviewStatus::Scheduled { days_left }
        }
    }

    /// Whether the review is overdue.
    pub fn is_overdue(self) -> bool {
        matches!(self, ReviewStatus::Overdue { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::days_in_month;
    use proptest::prelude::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn month_ends_and_leap_years() {
        for (from, due) in [
            ("2026-01-15", "2026-04-15"),
            ("2026-11-30", "2027-02-28"),
            ("2027-11-30", "2028-02-29"), // into a leap February
            ("2023-11-29", "2024-02-29"),
            ("2026-01-31", "2026-04-30"),
            ("2026-05-31", "2026-08-31"),
            ("2024-02-29", "2024-05-29"),
            ("2099-12-31", "2100-03-31"),
            ("2099-11-30", "2100-02-28"), // 2100 is not a leap year
            ("2099-10-31", "2100-01-31"),
        ] {
            assert_eq!(next_review(d(from)), d(due), "after {from}");
        }
    }

    #[test]
    fn overdue_from_the_day_after_the_due_date() {
        let due = d("2026-03-31");
        assert_eq!(
            ReviewStatus::of(due, d("2026-03-31")),
            ReviewStatus::DueSoon { days_left: 0 }
        );
        assert_eq!(
            ReviewStatus::of(due, d("2026-04-01")),
            ReviewStatus::Overdue { days_late: 1 }
        );
        assert_eq!(
            ReviewStatus::of(due, d("2026-03-17")),
            ReviewStatus::DueSoon { days_left: 14 }
        );
        assert_eq!(
            ReviewStatus::of(due, d("2026-03-16")),
            ReviewStatus::Scheduled { days_left: 15 }
        );
    }

    fn any_date() -> impl Strategy<Value = Date> {
        // 1950-01-01 .. 2150-12-31
        (-7305i64..66_108).prop_map(Date::from_days_since_epoch)
    }

    proptest! {
        #[test]
        fn the_next_review_is_three_calendar_months_on(from in any_date()) {
            let due = next_review(from);
            // A real date, three months on, on the same day or the month's last day.
            prop_assert_eq!(due.to_string().parse::<Date>().unwrap(), due);
            let months = (due.year() - from.year()) * 12 + i32::from(due.month()) - i32::from(from.month());
            prop_assert_eq!(months, 3);
            prop_assert_eq!(due.day(), from.day().min(days_in_month(due.year(), due.month())));
            let days = due.days_since_epoch() - from.days_since_epoch();
            prop_assert!((89..=92).contains(&days), "{} days from {} to {}", days, from, due);
        }

        #[test]
        fn overdue_exactly_when_today_is_past_the_due_date(due in any_date(), offset in -400i64..400) {
            let today = due.add_days(offset);
            let status = ReviewStatus::of(due, today);
            prop_assert_eq!(status.is_overdue(), today > due);
            match status {
                ReviewStatus::Overdue { days_late } => prop_assert_eq!(days_late, offset),
                ReviewStatus::DueSoon { days_left } | ReviewStatus::Scheduled { days_left } => prop_assert_eq!(days_left, -offset),
            }
        }
    }
}
