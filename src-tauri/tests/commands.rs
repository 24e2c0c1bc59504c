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

/// What the UI reads: the answer decodes as the shared IPC type.
fn typed<T: serde::de::DeserializeOwned>(answer: &Value) -> T {
    serde_json::from_value(answer.clone())
        .unwrap_or_else(|e| panic!("the UI cannot read {answer}: {e}"))
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

/// A course of 16 sessions at the test school, with a roster of three.
fn course_with_roster(app: &App) -> (Value, Value) {
    let school = app.new_school();
    let course = app.ok(
        cmd::ADD_COURSE,
        json!({"course": {"school": school["id"], "title": "水的旅行", "sessions": 16}}),
    );
    for (name, gender) in [("张小明", "male"), ("李小红", "female"), ("王芳", "")] {
        app.ok(
            cmd::ADD_STUDENT,
            json!({"course": course["course"]["id"], "student": {"name": name, "grade": "四年级", "gender": gender}}),
        );
    }
    (school, course)
}

fn roster_ids(detail: &Value) -> Vec<(String, String)> {
    detail["roster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["student"]["name"].as_str().unwrap().to_string(),
                r["student"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_course_is_listed_and_shows_its_school_roster_and_next_session() {
    let app = App::new();
    app.set_up();
    let (school, course) = course_with_roster(&app);
    assert_eq!(course["course"]["title"], "水的旅行");
    assert_eq!(
        course["course"]["sessions"], 16,
        "the planned sessions: {course}"
    );
    assert_eq!(course["school_name"], "青溪县杨柳乡小学");
    assert_eq!(
        (course["held"].clone(), course["planned"].clone()),
        (json!(0), json!(16))
    );

    let list = app.ok(cmd::LIST_COURSES, json!(null));
    let courses: Vec<fieldlog_domain::CourseSummary> = typed(&list);
    assert_eq!(courses.len(), 1, "{list}");
    assert_eq!(courses[0].course.fields.sessions, 16);
    assert_eq!(list[0]["course"]["id"], course["course"]["id"]);
    assert_eq!(list[0]["missing"], 16);

    let detail = app.ok(cmd::COURSE_DETAIL, json!({"id": course["course"]["id"]}));
    let _: fieldlog_app_api::CourseDetail = typed(&detail);
    assert_eq!(detail["school"]["id"], school["id"]);
    assert_eq!(detail["next"], json!({"number": 1, "planned": 16}));
    let names: Vec<String> = roster_ids(&detail).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 3, "{detail}");
    assert!(names.contains(&"李小红".to_string()), "{names:?}");
    let li = detail["roster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["student"]["name"] == "李小红")
        .unwrap();
    assert_eq!(li["student"]["gender"], "female");
    assert_eq!(li["attended"], 0);

    // Taken off: still listed, marked removed; a name already on the roster is refused.
    let removed = app.ok(
        cmd::REMOVE_STUDENT,
        json!({"course": course["course"]["id"], "student": li["student"]["id"]}),
    );
    assert_eq!(removed["removed"], true);
    let error = app.err(
        cmd::ADD_STUDENT,
        json!({"course": course["course"]["id"], "student": {"name": "张小明"}}),
    );
    assert_eq!(field_keys(&error), ["student"]);
    let detail = app.ok(cmd::COURSE_DETAIL, json!({"id": course["course"]["id"]}));
    let still: Vec<&Value> = detail["roster"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["student"]["removed"] == false)
        .collect();
    assert_eq!(still.len(), 2, "{detail}");
}

#[test]
fn a_refused_course_names_every_field_and_an_unknown_course_is_not_found() {
    let app = App::new();
    app.set_up();
    let error = app.err(
        cmd::ADD_COURSE,
        json!({"course": {"school": "没有这所学校", "title": " ", "sessions": 0}}),
    );
    assert_eq!(error["kind"], "invalid");
    assert_eq!(
        field_keys(&error),
        ["school", "course.title", "course.sessions"]
    );
    assert_eq!(app.ok(cmd::LIST_COURSES, json!(null)), json!([]));
    let unknown = "0190a0d8-0000-7000-8000-000000000000";
    let error = app.err(cmd::COURSE_DETAIL, json!({"id": unknown}));
    assert_eq!(field_keys(&error), ["course"], "{error}");
}

#[test]
fn a_session_saved_with_attendance_counts_those_present_and_the_course_shows_it() {
    let app = App::new();
    app.set_up();
    let (school, course) = course_with_roster(&app);
    let detail = app.ok(cmd::COURSE_DETAIL, json!({"id": course["course"]["id"]}));
    let ids = roster_ids(&detail);
    let present: Vec<&str> = ids
        .iter()
        .filter(|(name, _)| name != "王芳")
        .map(|(_, id)| id.as_str())
        .collect();

    // A typed count that disagrees with those marked present is refused beside the count.
    let error = app.err(
        cmd::SAVE_VISIT,
        json!({
            "id": null,
            "input": {"course": course["course"]["id"], "activities": ["class_session"],
                      "audience": {"students": 5}, "attendance": present},
            "photos": []
        }),
    );
    assert_eq!(field_keys(&error), ["audience.students"], "{error}");
    assert!(app.visits().is_empty());

    // The editor sends the course's school and the number present.
    let id = app.ok(
        cmd::SAVE_VISIT,
        json!({
            "id": null,
            "input": {"course": course["course"]["id"], "school": school["id"],
                      "activities": ["class_session"], "topic": "",
                      "audience": {"students": 2, "teachers": 1}, "attendance": present},
            "photos": []
        }),
    );
    let visit = app.ok(cmd::VISIT_DETAIL, json!({"id": id}));
    let _: fieldlog_app_api::VisitDetail = typed(&visit);
    assert_eq!(visit["summary"]["visit"]["audience"]["students"], 2);
    assert_eq!(
        visit["summary"]["visit"]["topic"], "水的旅行",
        "the course's title"
    );
    assert_eq!(visit["course"]["title"], "水的旅行");
    assert_eq!(
        visit["course"]["session"],
        json!({"number": 1, "planned": 16})
    );
    let mut names: Vec<String> = visit["course"]["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["张小明", "李小红"]);

    let detail = app.ok(cmd::COURSE_DETAIL, json!({"id": course["course"]["id"]}));
    let _: fieldlog_app_api::CourseDetail = typed(&detail);
    let summary = &detail["summary"];
    assert_eq!(
        (summary["held"].clone(), summary["missing"].clone()),
        (json!(1), json!(15))
    );
    let session = &summary["sessions"][0];
    assert_eq!(session["visit"], id);
    assert_eq!(session["number"], 1);
    assert_eq!(session["present"], 2);
    assert_eq!(session["students"], 2);
    assert_eq!(session["clash"], false);
    assert_eq!(detail["next"]["number"], 2);
    assert_eq!(
        app.ok(cmd::NEXT_SESSION, json!({"id": course["course"]["id"]})),
        json!({"number": 2, "planned": 16})
    );
    let attended: Vec<(String, u64)> = detail["roster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["student"]["name"].as_str().unwrap().to_string(),
                r["attended"].as_u64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(attended.len(), 2, "{attended:?}");

    // Editing the session: one more present, the count follows.
    let mut input = json!({
        "course": course["course"]["id"], "school": school["id"], "activities": ["class_session"],
        "topic": "水的旅行", "date": visit["summary"]["visit"]["date"],
        "audience": {"students": 3, "teachers": 1},
        "attendance": ids.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>()
    });
    app.ok(
        cmd::SAVE_VISIT,
        json!({"id": id, "input": input.clone(), "photos": []}),
    );
    let detail = app.ok(cmd::COURSE_DETAIL, json!({"id": course["course"]["id"]}));
    assert_eq!(detail["summary"]["sessions"][0]["present"], 3);
    assert_eq!(detail["summary"]["held"], 1);
    // A second session on the same date is a clash, shown on both.
    input["attendance"] = json!([]);
    input["audience"]["students"] = json!(20);
    app.ok(
        cmd::SAVE_VISIT,
        json!({"id": null, "input": input, "photos": []}),
    );
    let detail = app.ok(cmd::COURSE_DETAIL, json!({"id": course["course"]["id"]}));
    let sessions = detail["summary"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s["clash"] == true), "{sessions:?}");
    assert_eq!(sessions[1]["present"], Value::Null);
}

/// A bureau that answers the enrollment, then each members request with `members`, and
/// then nothing (gone). Returns its URL.
fn bureau_with_members(members: Value, rounds: usize) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let enrolled = json!({
        "token": "t".repeat(64),
        "device_id": "0190a0d8-0000-7000-8000-000000000001",
        "team": "caravan-1",
        "member": "李老师",
        "role": "volunteer",
        "districts": ["青溪县"],
    });
    let answers: Vec<Value> = std::iter::once(enrolled)
        .chain(std::iter::repeat_n(json!({ "members": members }), rounds))
        .collect();
    std::thread::spawn(move || {
        for body in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request = vec![0; length];
            let _ = reader.read_exact(&mut request);
            let body = body.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut stream = reader.into_inner();
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
        // Gone: later requests find nobody listening.
    });
    url
}

#[test]
fn a_pairing_names_a_member_fetched_from_the_bureau_and_ends_on_a_day() {
    let app = App::new();
    app.set_up();
    // Nothing held and no bureau yet: an empty list, not an error.
    let members = app.ok(cmd::MEMBERS, json!({"refresh": true}));
    assert_eq!(members, json!({"members": [], "refreshed": false}));

    let url = bureau_with_members(
        json!([
            {"team": "caravan-1", "name": "李老师", "role": "volunteer", "districts": ["青溪县"]},
            {"team": "caravan-1", "name": "钱老师", "role": "volunteer", "districts": ["青溪县"]}
        ]),
        1,
    );
    app.ok(
        cmd::ENROLL,
        json!({"url": url, "code": "ABCD-EFGH", "device_name": ""}),
    );
    let members = app.ok(cmd::MEMBERS, json!({"refresh": true}));
    let _: fieldlog_app_api::Members = typed(&members);
    assert_eq!(members["refreshed"], true, "{members}");
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    // The bureau is gone: the list held answers.
    let held = app.ok(cmd::MEMBERS, json!({"refresh": true}));
    assert_eq!(held["refreshed"], false);
    assert_eq!(held["members"], members["members"]);

    let school = app.new_school();
    let error = app.err(
        cmd::ADD_PAIRING,
        json!({"pairing": {"volunteer": "孙老师", "teacher": "", "school": school["id"]}}),
    );
    assert_eq!(
        field_keys(&error),
        ["pairing.volunteer", "pairing.teacher"],
        "{error}"
    );
    let row = app.ok(
        cmd::ADD_PAIRING,
        json!({"pairing": {"volunteer": "钱老师", "teacher": "王梅", "school": school["id"],
                           "since": "2026-03-01"}}),
    );
    assert_eq!(row["school_name"], "青溪县杨柳乡小学");
    assert_eq!(row["pairing"]["volunteer"], "钱老师");
    assert_eq!(row["pairing"]["until"], Value::Null);

    let listed = app.ok(cmd::LIST_PAIRINGS, json!(null));
    let _: Vec<fieldlog_app_api::PairingRow> = typed(&listed);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["pairing"]["id"], row["pairing"]["id"]);

    // An end before it began, or a date that is not one, is refused beside "until".
    for on in ["2026-02-01", "2026-13-40"] {
        let error = app.err(
            cmd::END_PAIRING,
            json!({"id": row["pairing"]["id"], "on": on}),
        );
        assert_eq!(field_keys(&error), ["pairing.until"], "{on}: {error}");
    }
    let ended = app.ok(
        cmd::END_PAIRING,
        json!({"id": row["pairing"]["id"], "on": "2026-06-30"}),
    );
    assert_eq!(ended["pairing"]["until"], "2026-06-30");
    let listed = app.ok(cmd::LIST_PAIRINGS, json!(null));
    assert_eq!(listed[0]["pairing"]["until"], "2026-06-30");
}

/// Makes the app's device a coordinator of the test registry's districts, as an enrollment
/// with that role records it (no bureau needed here; the app e2e test enrolls for real).
fn act_as_coordinator(store: &fieldlog_core::Store) {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let device_id = store.device().id.to_string();
    conn.execute(
        "INSERT OR REPLACE INTO bureau (singleton, url, token, device_id, member, role,
             districts, enrolled_at)
         VALUES (1, 'http://127.0.0.1:9', 'token', ?1, '王协调', 'coordinator',
                 '[\"南山区\",\"青溪县\"]', 0)",
        [device_id],
    )
    .unwrap();
}

#[test]
fn a_coordinator_merges_a_pair_takes_a_pending_school_flags_a_visit_and_sees_the_figures() {
    use fieldlog_core::{Options, ReportFilter, Store};
    let app = App::new();
    app.set_up();
    let mut store = Store::open(app.dir.path(), Options::default()).unwrap();
    store
        .import_schools_csv(
            "name,district,area,level,enrollment\n南山小学,南山区,城区,小学,900\n\
             青溪县龙潭镇中心小学,青溪县,乡村,小学,420\n"
                .as_bytes(),
        )
        .unwrap();
    let today = chrono::Local::now().date_naive();
    let visit = |school: &str, students: i64| -> fieldlog_domain::VisitInput {
        serde_json::from_value(json!({
            "school": school, "date": today.to_string(), "activities": ["lecture"],
            "topic": "水的三态", "audience": {"students": students}
        }))
        .unwrap()
    };
    let a = store.add_visit(&visit("南山小学", 80), today).unwrap();
    // A crew mate logs the same stop on another phone; a bundle brings it here.
    let other_dir = tempfile::tempdir().unwrap();
    let mut teammate =
        Store::init(other_dir.path(), "二号机", "caravan-1", Options::default()).unwrap();
    let scope = fieldlog_core::bundle::ExportScope::All;
    teammate
        .import_bundle(&store.export_bundle(&scope).unwrap().0)
        .unwrap();
    let b = teammate.add_visit(&visit("南山小学", 70), today).unwrap();
    store
        .import_bundle(&teammate.export_bundle(&scope).unwrap().0)
        .unwrap();
    let pending = app.ok(
        cmd::ADD_SCHOOL,
        json!({"school": {"name": "南山镇小学", "district": "南山区", "area": "urban"}}),
    );
    let rural = store
        .add_visit(&visit("青溪县龙潭镇中心小学", 40), today)
        .unwrap();
    act_as_coordinator(&store);
    let overview = app.ok(cmd::OVERVIEW, json!({}));
    assert_eq!(overview["enrollment"]["role"], "coordinator");

    let queue: fieldlog_app_api::desk::QueueView = typed(&app.ok(cmd::REVIEW_QUEUE, json!({})));
    assert_eq!(queue.duplicates.len(), 1, "{queue:?}");
    assert_eq!(
        queue.duplicates[0].differing,
        [fieldlog_domain::Field::Students]
    );
    assert_eq!(queue.pending_schools.len(), 1);
    assert_eq!(
        queue.pending_schools[0].similar[0].school.fields.name,
        "南山小学"
    );

    // A merge into itself is refused, with the reason in both languages.
    let refused = app.err(
        cmd::DECIDE,
        json!({"action": "merge", "keep": a.id, "other": a.id, "audience": "keep"}),
    );
    assert_eq!(refused["kind"], "decision", "{refused}");
    assert!(
        !refused["details"]["explained"]["zh_cn"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    app.ok(
        cmd::DECIDE,
        json!({"action": "merge", "keep": a.id, "other": b.id, "audience": "sum"}),
    );
    app.ok(
        cmd::DECIDE,
        json!({"action": "merge_school", "pending": pending["id"], "into": queue.pending_schools[0].similar[0].school.id}),
    );
    app.ok(
        cmd::DECIDE,
        json!({"action": "flag", "visit": rural.id, "note": "请补充照片"}),
    );
    let queue: fieldlog_app_api::desk::QueueView = typed(&app.ok(cmd::REVIEW_QUEUE, json!({})));
    assert!(queue.duplicates.is_empty() && queue.pending_schools.is_empty());

    let detail = app.ok(cmd::VISIT_DETAIL, json!({"id": rural.id}));
    assert_eq!(detail["summary"]["badge"], "flagged", "{detail}");
    assert_eq!(detail["review"]["flag_note"], "请补充照片");
    assert_eq!(detail["history"].as_array().unwrap().len(), 1);

    let year = chrono::Datelike::year(&today);
    let board: fieldlog_domain::Dashboard = typed(&app.ok(cmd::DASHBOARD, json!({"year": year})));
    let (first, last) = (
        chrono::NaiveDate::from_ymd_opt(year, 1, 1),
        chrono::NaiveDate::from_ymd_opt(year, 12, 31),
    );
    let expected = store
        .report(&ReportFilter {
            from: first,
            to: last,
            district: None,
        })
        .unwrap();
    assert_eq!(board.report, expected);
    assert_eq!((board.report.visits, board.report.audience), (2, 190));
    let behind: fieldlog_domain::FigureVisits = typed(&app.ok(
        cmd::FIGURE_VISITS,
        json!({"filter": {"year": year}, "figure": "rural_lectures"}),
    ));
    assert_eq!(behind.total, 1);
    assert_eq!(behind.visits[0].id, rural.id);

    let targets = app.ok(
        cmd::SET_TARGETS,
        json!({"year": year, "goals": [["lectures", "4"], ["rural_lecture_share", "20%"]]}),
    );
    assert_eq!(targets.as_array().unwrap().len(), 2, "{targets}");
    let refused = app.err(
        cmd::SET_TARGETS,
        json!({"year": year, "goals": [["lectures", "很多"]]}),
    );
    assert_eq!(field_keys(&refused), ["target"]);

    let rows = app.ok(cmd::REGISTRY, json!({"query": "nsxx"}));
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["visits"], 1);
}
