//! Rules for new passwords (OWASP ASVS 6.2): at least 8 characters, up to 128 allowed, no
//! composition rules, and never a common password or the username.

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 8;
/// Most characters a password may have (long passphrases are welcome).
pub const MAX_CHARS: usize = 128;

const COMMON: &str = include_str!("common_passwords.txt");

fn is_common(password: &str) -> bool {
    let candidate = password.trim().to_lowercase();
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| l == candidate)
}

/// Checks a new password; the error is a sentence for the person choosing it.
pub fn check_new_password(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(format!(
            "Choose a password of at least {MIN_CHARS} characters (15 or more is better: a few unrelated words work well)."
        ));
    }
    if chars > MAX_CHARS {
        return Err(format!(
            "Choose a password of at most {MAX_CHARS} characters."
        ));
    }
    if is_common(password) {
        return Err("That password is too common and easy to guess; choose another.".into());
    }
    if password.trim().eq_ignore_ascii_case(username.trim()) {
        return Err("The password must not be the username.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_common_and_username_passwords_are_refused() {
        assert!(check_new_password("short7!", "sam").is_err());
        assert!(
            check_new_password("Password123", "sam").is_err(),
            "common, whatever the case"
        );
        assert!(check_new_password("qwertyuiop", "sam").is_err());
        assert!(check_new_password("sam.kerr.1", "sam.kerr.1").is_err());
        assert!(check_new_password(&"x".repeat(129), "sam").is_err());
    }

    #[test]
    fn long_and_plain_passwords_are_fine_without_composition_rules() {
        assert!(check_new_password("eightchr", "sam").is_ok());
        assert!(check_new_password("correct horse battery staple", "sam").is_ok());
        assert!(
            check_new_password(&"y".repeat(64), "sam").is_ok(),
            "64 characters allowed"
        );
    }
}
