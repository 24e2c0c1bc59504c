//! Pinyin keys for finding schools: `nsxx` (initials) or `nanshan` (full) finds 南山小学.

use pinyin::ToPinyin;

/// The initials and the full toneless pinyin of a name, lowercase, without spaces.
/// Characters without pinyin (digits, Latin letters) are kept as they are.
pub(crate) fn pinyin_keys(name: &str) -> (String, String) {
    let mut initials = String::new();
    let mut full = String::new();
    for (c, py) in name.chars().zip(name.to_pinyin()) {
        match py {
            Some(py) => {
                initials.push_str(py.first_letter());
                full.push_str(py.plain());
            }
            None if c.is_alphanumeric() => {
                let lower = c.to_lowercase().collect::<String>();
                initials.push_str(&lower);
                full.push_str(&lower);
            }
            None => {}
        }
    }
    (initials, full)
}

/// A query as the pinyin columns hold it: lowercase, no spaces or apostrophes.
pub(crate) fn normalize_query(query: &str) -> String {
    query
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_chinese_names() {
        assert_eq!(
            pinyin_keys("南山小学"),
            ("nsxx".into(), "nanshanxiaoxue".into())
        );
        assert_eq!(
            pinyin_keys("石门县第2中学"),
            ("smxd2zx".into(), "shimenxiandi2zhongxue".into())
        );
    }

    #[test]
    fn queries_are_normalized() {
        assert_eq!(normalize_query(" Nan Shan "), "nanshan");
        assert_eq!(normalize_query("xi'an"), "xian");
    }
}
