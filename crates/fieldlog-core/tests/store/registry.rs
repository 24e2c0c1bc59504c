//! School registry imports: the bureau's rules, on a device.

use crate::support::{Device, REGISTRY};
use fieldlog_core::registry::RegistryError;
use fieldlog_core::{Error, ImportSummary};
use fieldlog_domain::Lang;

#[test]
fn a_file_listing_a_school_twice_is_refused_with_nothing_written() {
    let mut d = Device::new("一号机", "caravan-1");
    let before = d.all_rows();
    let twice = format!("{REGISTRY}南山小学,南山区,城区,小学,1280\n");
    let error = d.store.import_schools_csv(twice.as_bytes()).unwrap_err();
    match &error {
        Error::Registry(RegistryError::Duplicate {
            line: 7,
            first_line: 2,
            name,
            ..
        }) => assert_eq!(name, "南山小学"),
        other => panic!("expected a school listed twice, got {other:?}"),
    }
    let zh = error.message(Lang::ZhCn);
    let en = error.message(Lang::En);
    for message in [&zh, &en] {
        for part in ["7", "2", "南山小学", "南山区"] {
            assert!(message.contains(part), "{message}");
        }
    }
    assert!(zh.contains("重复"), "{zh}");
    assert!(en.contains("listed twice"), "{en}");
    assert_eq!(d.all_rows(), before);
    assert_eq!(d.changes(), 0);
}

#[test]
fn importing_the_same_file_again_changes_nothing() {
    let mut d = Device::new("一号机", "caravan-1");
    let first = d.store.import_schools_csv(REGISTRY.as_bytes()).unwrap();
    assert_eq!(
        first,
        ImportSummary {
            added: 5,
            updated: 0,
            unchanged: 0
        }
    );
    let after_first = d.changes();
    let rows = d.all_rows();
    for _ in 0..2 {
        let again = d.store.import_schools_csv(REGISTRY.as_bytes()).unwrap();
        assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 5));
        assert_eq!(d.store.schools().unwrap().len(), 5);
        assert_eq!(d.changes(), after_first);
        assert_eq!(d.all_rows(), rows);
    }
}
