//! Which language to speak, and the few words the CLI says that the domain has no label for.
//! Field names, activity kinds, areas and levels come from the domain's own labels.

use fieldlog_domain::Lang;

/// `--lang` if given; else the first of `FIELDLOG_LANG`, `LC_ALL`, `LC_MESSAGES`, `LANG` that
/// names a real locale (not unset, empty, `C` or `POSIX`); else Chinese.
pub fn resolve(flag: Option<Lang>, env: impl Fn(&str) -> Option<String>) -> Lang {
    if let Some(lang) = flag {
        return lang;
    }
    ["FIELDLOG_LANG", "LC_ALL", "LC_MESSAGES", "LANG"]
        .into_iter()
        .filter_map(env)
        .find(|value| {
            let base = value.split(['.', '@']).next().unwrap_or_default().trim();
            !base.is_empty() && base != "C" && base != "POSIX"
        })
        .map_or(Lang::ZhCn, |value| Lang::from_locale(&value))
}

/// Picks the Chinese or the English text.
pub fn tr(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    }
}

/// `label：value` in Chinese, `label: value` in English.
pub fn line(lang: Lang, label: &str, value: impl std::fmt::Display) -> String {
    format!("{label}{}{value}", tr(lang, "：", ": "))
}

/// How lists join in running text: `讲座、实验秀` / `lecture, experiment show`.
pub fn list_sep(lang: Lang) -> &'static str {
    tr(lang, "、", ", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_flag_wins() {
        assert_eq!(
            resolve(Some(Lang::En), env(&[("LC_ALL", "zh_CN.UTF-8")])),
            Lang::En
        );
    }

    #[test]
    fn fieldlog_lang_before_the_locale_unless_empty() {
        let vars = [("FIELDLOG_LANG", "en"), ("LC_ALL", "zh_CN.UTF-8")];
        assert_eq!(resolve(None, env(&vars)), Lang::En);
        let vars = [("FIELDLOG_LANG", ""), ("LANG", "en_US.UTF-8")];
        assert_eq!(resolve(None, env(&vars)), Lang::En);
    }

    #[test]
    fn locale_variables_in_order_skipping_c_and_empty() {
        let vars = [
            ("LC_ALL", ""),
            ("LC_MESSAGES", "C.UTF-8"),
            ("LANG", "en_US.UTF-8"),
        ];
        assert_eq!(resolve(None, env(&vars)), Lang::En);
        let vars = [("LC_ALL", "POSIX"), ("LANG", "zh_CN.UTF-8")];
        assert_eq!(resolve(None, env(&vars)), Lang::ZhCn);
        let vars = [("LC_MESSAGES", "en_GB"), ("LANG", "zh_CN.UTF-8")];
        assert_eq!(resolve(None, env(&vars)), Lang::En);
    }

    #[test]
    fn chinese_when_nothing_says_otherwise() {
        assert_eq!(resolve(None, env(&[])), Lang::ZhCn);
        assert_eq!(resolve(None, env(&[("LANG", "C")])), Lang::ZhCn);
    }
}
