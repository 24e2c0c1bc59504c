//! The command layer through Tauri's IPC with the mock runtime (`tauri::test`): the same
//! handlers, argument decoding and error shape the UI meets, on a real store in a temp dir,
//! without a window. The full journey in the real webview is in `tests/app-e2e`.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use fieldlog_app::commands::ReportFirstRender;
use fieldlog_app::device::Device;
use fieldlog_app::sync_task::SyncHandle;
use fieldlog_app_api::{FILE_NAME_HEADER, cmd};
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow};

struct App {
    window: WebviewWindow<MockRuntime>,
    _app: tauri::App<MockRuntime>,
    dir: tempfile::TempDir,
}

impl App {
    fn new() -> App {
        let dir = tempfile::tempdir().unwrap();
        let app = fieldlog_app::with_commands(mock_builder())
            .build(mock_context(tauri::test::noop_assets()))
            .unwrap();
        app.manage(Device::open(dir.path(), SyncHandle::detached()).unwrap());
        app.manage(ReportFirstRender(false));
        let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        App {
            window,
            _app: app,
            dir,
        }
    }

    fn request(
        &self,
        command: &str,
        body: InvokeBody,
        headers: tauri::http::HeaderMap,
    ) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: command.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                // The app's own origin on Linux: commands from elsewhere are refused.
                url: "tauri://localhost".parse().unwrap(),
                body,
                headers,
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    /// A command with one `args` object, as the UI sends it.
    fn call(&self, command: &str, args: Value) -> Result<Value, Value> {
        self.request(
            command,
            InvokeBody::Json(json!({ "args": args })),
            Default::default(),
        )
    }

    fn ok(&self, command: &str, args: Value) -> Value {
        self.call(command, args)
            .unwrap_or_else(|e| panic!("{command} failed: {e}"))
    }

    fn err(&self, command: &str, args: Value) -> Value {
        self.call(command, args)
            .err()
            .unwrap_or_else(|| panic!("{command} succeeded"))
    }

    fn stage_photo(&self, name: &str, bytes: Vec<u8>) -> Result<Value, Value> {
        let mut headers = tauri::http::HeaderMap::new();
        headers.insert(FILE_NAME_HEADER, name.parse().unwrap());
        self.request(cmd::STAGE_PHOTO, InvokeBody::Raw(bytes), headers)
    }

    fn set_up(&self) {
        let overview = self.ok(
            cmd::SET_UP_DEVICE,
            json!({"device_name": "一号机", "team": "caravan-1"}),
        );
        assert_eq!(overview["device"]["team"], "caravan-1");
    }

    fn new_school(&self) -> Value {
        self.ok(
            cmd::ADD_SCHOOL,
            json!({"school": {"name": "青溪县杨柳乡小学", "district": "青溪县", "area": "rural"}}),
        )
    }

    fn visits(&self) -> Vec<Value> {
        self.ok(cmd::LIST_VISITS, json!({}))
            .as_array()
            .unwrap()
            .clone()
    }
}

fn png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x / 4) as u8, (y / 3) as u8, ((x + y) / 6) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn field_keys(error: &Value) -> Vec<String> {
    error["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_device_that_is_not_set_up_says_so() {
    let app = App::new();
    let overview = app.ok(cmd::OVERVIEW, json!(null));
    assert_eq!(overview["device"], Value::Null);
    assert_eq!(overview["sync"]["state"], "not_enrolled");
    let error = app.err(cmd::LIST_VISITS, json!({}));
    assert_eq!(error["kind"], "not_set_up");
    assert_eq!(error["message_key"], "error.not_set_up");
}

#[test]
fn set_up_refuses_an_empty_name_and_leaves_nothing_behind() {
    let app = App::new();
    let error = app.err(
        cmd::SET_UP_DEVICE,
        json!({"device_name": " ", "team": "caravan-1"}),
    );
    assert_eq!(error["kind"], "invalid");
    assert_eq!(field_keys(&error), ["device_name"]);
    assert_eq!(app.ok(cmd::OVERVIEW, json!(null))["device"], Value::Null);
    // The same data dir still takes a good set-up.
    app.set_up();
}

#[test]
fn a_visit_is_saved_found_by_pinyin_listed_and_shown() {
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    assert_eq!(school["status"], "pending");

    let hits = app.ok(cmd::SEARCH_SCHOOLS, json!({"query": "qxxylxx"}));
    assert_eq!(hits[0]["id"], school["id"], "{hits}");

    let id = app.ok(
        cmd::SAVE_VISIT,
        json!({
            "id": null,
            "input": {
                "school": school["id"],
                "activities": ["lecture"],
                "topic": "水的循环",
                "audience": {"students": 41, "teachers": 3},
                "donations": {"books": 20}
            },
            "photos": []
        }),
    );
    let visits = app.visits();
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0]["visit"]["id"], id);
    assert_eq!(visits[0]["school_name"], "青溪县杨柳乡小学");
    // Not enrolled: nothing has reached a bureau.
    assert_eq!(visits[0]["badge"], "draft");

    let detail = app.ok(cmd::VISIT_DETAIL, json!({"id": id}));
    assert_eq!(detail["summary"]["visit"]["audience"]["students"], 41);
    assert_eq!(detail["conflicts"], json!([]));

    // The school visited comes first when the picker opens with no query.
    let recent = app.ok(cmd::SEARCH_SCHOOLS, json!({"query": ""}));
    assert_eq!(recent[0]["id"], school["id"]);
    assert_eq!(recent[0]["recent"], true);
}

#[test]
fn refused_fields_are_named_and_nothing_is_saved() {
    let app = App::new();
    app.set_up();
    let error = app.err(
        cmd::SAVE_VISIT,
        json!({
            "id": null,
            "input": {"school": "", "activities": ["lecture"], "audience": {"students": -3}},
            "photos": []
        }),
    );
    assert_eq!(error["kind"], "invalid");
    let fields = field_keys(&error);
    assert!(fields.contains(&"school".to_string()), "{fields:?}");
    assert!(
        fields.contains(&"audience.students".to_string()),
        "{fields:?}"
    );
    assert!(app.visits().is_empty());
}

#[test]
fn an_edit_writes_only_the_fields_that_changed() {
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    let input = json!({
        "school": school["id"], "activities": ["lecture"], "topic": "磁铁",
        "audience": {"students": 10}
    });
    let id = app.ok(
        cmd::SAVE_VISIT,
        json!({"id": null, "input": input, "photos": []}),
    );
    let mut edited = input.clone();
    // The editor sends every field back, the date it showed included.
    edited["date"] = app.visits()[0]["visit"]["date"].clone();
    edited["audience"]["students"] = json!(12);
    let same = app.ok(
        cmd::SAVE_VISIT,
        json!({"id": id, "input": edited, "photos": []}),
    );
    assert_eq!(same, id);
    let visits = app.visits();
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0]["visit"]["audience"]["students"], 12);
    assert_eq!(visits[0]["visit"]["topic"], "磁铁");
}

#[test]
fn a_photo_is_staged_attached_and_shown_as_a_thumbnail() {
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    // The UI sends `photo.<extension>`: header values are ASCII.
    let staged = app.stage_photo("photo.png", png()).unwrap();
    let token = staged["token"].as_str().unwrap();

    let id = app.ok(
        cmd::SAVE_VISIT,
        json!({
            "id": null,
            "input": {"school": school["id"], "activities": ["lecture"], "audience": {"students": 5}},
            "photos": [{"token": token, "caption": "实验", "consent": true}]
        }),
    );
    let detail = app.ok(cmd::VISIT_DETAIL, json!({"id": id}));
    let photo = &detail["summary"]["visit"]["photos"][0];
    assert_eq!(photo["caption"], "实验");
    assert_eq!(photo["consent"], true);
    let thumbnail = app.ok(
        cmd::PHOTO_THUMBNAIL,
        json!({"sha256": photo["thumbnail_sha256"]}),
    );
    assert!(
        thumbnail["data_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    );
    // The staged copy is gone once attached.
    let staging = app.dir.path().join("staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
}

/// Files under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn new_visit_with_photo(school: &Value, token: &Value, caption: &str) -> Value {
    json!({
        "id": null,
        "input": {"school": school["id"], "activities": ["lecture"], "audience": {"students": 5}},
        "photos": [{"token": token, "caption": caption, "consent": false}]
    })
}

#[test]
fn a_refused_caption_saves_no_visit_and_the_retry_saves_exactly_one() {
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    let token = app.stage_photo("photo.png", png()).unwrap()["token"].clone();
    let error = app.err(
        cmd::SAVE_VISIT,
        new_visit_with_photo(&school, &token, &"长".repeat(501)),
    );
    assert_eq!(error["kind"], "invalid");
    assert_eq!(field_keys(&error), ["photo.caption"]);
    assert!(app.visits().is_empty(), "a refused save stored a visit");

    // The editor is still a new visit: the person shortens the caption and saves again.
    let id = app.ok(
        cmd::SAVE_VISIT,
        new_visit_with_photo(&school, &token, "实验课"),
    );
    let visits = app.visits();
    assert_eq!(visits.len(), 1, "{visits:?}");
    assert_eq!(visits[0]["visit"]["id"], id);
    assert_eq!(visits[0]["visit"]["photos"][0]["caption"], "实验课");
}

#[test]
fn a_staged_photo_is_ingested_once_when_picked() {
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    let token = app.stage_photo("photo.png", png()).unwrap()["token"].clone();
    let stored = files(&app.dir.path().join("photos"));
    assert_eq!(stored.len(), 2, "display copy and thumbnail: {stored:?}");
    // Decoding the picked bytes again at save would now fail.
    for file in files(&app.dir.path().join("staging")) {
        if file.extension().is_none_or(|e| e != "json") {
            std::fs::write(&file, b"not a photo any more").unwrap();
        }
    }
    let id = app.ok(cmd::SAVE_VISIT, new_visit_with_photo(&school, &token, ""));
    let detail = app.ok(cmd::VISIT_DETAIL, json!({"id": id}));
    let photo = &detail["summary"]["visit"]["photos"][0];
    let display = photo["display_sha256"].as_str().unwrap();
    assert!(
        stored.iter().any(|f| f.to_string_lossy().contains(display)),
        "{stored:?}"
    );
}

#[test]
fn photos_picked_in_a_cancelled_editor_are_discarded() {
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    let token = app.stage_photo("photo.png", png()).unwrap()["token"].clone();
    assert!(!files(&app.dir.path().join("photos")).is_empty());
    app.ok(cmd::DISCARD_PHOTOS, json!({"tokens": [token]}));
    assert_eq!(
        files(&app.dir.path().join("staging")),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        files(&app.dir.path().join("photos")),
        Vec::<std::path::PathBuf>::new()
    );
    let error = app.err(cmd::SAVE_VISIT, new_visit_with_photo(&school, &token, ""));
    assert_eq!(error["kind"], "not_found");
    assert!(app.visits().is_empty());
}

#[test]
fn a_file_that_is_not_a_photo_is_refused_when_picked() {
    let app = App::new();
    app.set_up();
    let error = app
        .stage_photo("notes.jpg", b"not a photo at all".to_vec())
        .unwrap_err();
    assert_eq!(error["kind"], "bad_photo");
    // A token the shell never minted attaches nothing, and the visit is not half-saved.
    let school = app.new_school();
    let error = app.err(
        cmd::SAVE_VISIT,
        json!({
            "id": null,
            "input": {"school": school["id"], "activities": ["lecture"]},
            "photos": [{"token": "../../etc/passwd", "caption": "", "consent": false}]
        }),
    );
    assert_eq!(error["kind"], "not_found");
    assert!(app.visits().is_empty());
}

#[test]
fn enrolling_with_an_unreachable_bureau_is_offline_and_keeps_the_device_usable() {
    let app = App::new();
    app.set_up();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = app.err(
        cmd::ENROLL,
        json!({"url": format!("http://127.0.0.1:{port}"), "code": "ABCD-EFGH", "device_name": ""}),
    );
    assert_eq!(error["kind"], "offline", "{error}");
    let overview = app.ok(cmd::OVERVIEW, json!(null));
    assert_eq!(overview["enrollment"], Value::Null);
    assert_eq!(overview["device"]["name"], "一号机");
}

#[test]
fn concurrent_edits_of_one_field_show_every_value_and_who_entered_it() {
    use fieldlog_core::{Options, Store, bundle::ExportScope};
    let app = App::new();
    app.set_up();
    let school = app.new_school();
    let input = json!({
        "school": school["id"], "activities": ["lecture"], "topic": "磁铁",
        "audience": {"students": 10}
    });
    let id = app.ok(
        cmd::SAVE_VISIT,
        json!({"id": null, "input": input, "photos": []}),
    );
    let visit_id = id.as_str().unwrap().parse().unwrap();

    // A teammate's phone gets the visit by bundle (no bureau needed) and edits the topic
    // while this device edits it too.
    let mut mine = Store::open(app.dir.path(), Options::default()).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let mut teammate =
        Store::init(other_dir.path(), "二号机", "caravan-1", Options::default()).unwrap();
    teammate
        .import_bundle(&mine.export_bundle(&ExportScope::All).unwrap().0)
        .unwrap();
    let today = chrono::Local::now().date_naive();
    teammate
        .edit_visit(visit_id, &[("topic".into(), "电路".into())], today)
        .unwrap();
    let mut edited = input.clone();
    edited["date"] = app.visits()[0]["visit"]["date"].clone();
    edited["topic"] = json!("光的折射");
    app.ok(
        cmd::SAVE_VISIT,
        json!({"id": id, "input": edited, "photos": []}),
    );
    mine.import_bundle(&teammate.export_bundle(&ExportScope::All).unwrap().0)
        .unwrap();

    let detail = app.ok(cmd::VISIT_DETAIL, json!({"id": id}));
    assert_eq!(detail["summary"]["badge"], "conflict", "{detail}");
    let conflicts = detail["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{detail}");
    assert_eq!(conflicts[0]["field"], "topic");
    let mut entered: Vec<(String, String)> = conflicts[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["author"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    entered.sort();
    assert_eq!(
        entered,
        [
            ("一号机".to_string(), "光的折射".to_string()),
            ("二号机".to_string(), "电路".to_string())
        ]
    );
}
