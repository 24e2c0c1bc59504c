//! Finding 1 of the review, through the real binaries: a device that imported a teammate's
//! bundle syncs its own visits and carries the teammate's, signed, to the bureau.

use crate::{TestDevice, bureau_bin, demo_registry};
use fieldlog_tests::bureau::Bureau;

fn visit(device: &TestDevice, students: &str) -> String {
    let args = [
        "visit",
        "add",
        "--school",
        "南山小学",
        "--activity",
        "lecture",
        "--students",
        students,
    ];
    device.run(&args).ok().trim().to_string()
}

#[test]
fn a_device_carries_a_teammates_bundled_visit_to_the_bureau_with_its_own() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    let a = TestDevice::init("zh-CN", "一号机", "caravan-1");
    let b = TestDevice::init("zh-CN", "二号机", "caravan-1");
    for (device, name) in [(&a, "一号机"), (&b, "二号机")] {
        let code = bureau.code("caravan-1", name);
        device.run(&["enroll", &bureau.url(), &code]).ok();
        device.run(&["sync"]).ok();
    }
    // B is out of signal: its visit travels by bundle.
    let theirs = visit(&b, "40");
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    b.run(&["bundle", "export", "--all", path]).ok();
    a.run(&["bundle", "import", path]).ok();
    let mine = visit(&a, "25");

    a.run(&["sync"]).ok();
    let status: serde_json::Value =
        serde_json::from_str(&a.run(&["--json", "status"]).ok()).unwrap();
    assert_eq!(status["waiting_changes"], 0, "{status}");
    let listed = bureau.show(&["visits"]);
    assert!(
        listed.contains(&theirs) && listed.contains(&mine),
        "both visits at the bureau:\n{listed}"
    );
}
