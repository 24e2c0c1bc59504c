//! Writing, reading back, reopening, the projection, reports and conflicts.

use crate::support::{REGISTRY, START_MS, send, team, today, visit};
use fieldlog_core::registry::RegistryError;
use fieldlog_core::{Error, ReportFilter, VisitFilter};
use fieldlog_domain::{Area, Field, Lang, Report, SchoolInput, SchoolStatus};

#[test]
fn visits_survive_reopen_exactly() {
    let mut d = team(1).pop().unwrap();
    let a = d.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    let b = d
        .store
        .add_visit(&visit("青溪县龙潭镇中心小学", 12), today())
        .unwrap();
    d.store
        .edit_visit(
            a.id,
            &[
                ("topic".into(), "磁铁".into()),
                ("audience.students".into(), "45".into()),
                ("audience.breakdown.grades_4_6.female".into(), "20".into()),
                ("activities".into(), "lecture,hands_on".into()),
            ],
            today(),
        )
        .unwrap();
    d.store.delete_visit(b.id).unwrap();
    let before = d.store.visits(&VisitFilter {
        include_deleted: true,
        ..Default::default()
    });
    d.reopen();
    let after = d.store.visits(&VisitFilter {
        include_deleted: true,
        ..Default::default()
    });
    assert_eq!(before.unwrap(), after.as_ref().unwrap().clone());
    let a = d.store.visit(a.id).unwrap();
    assert_eq!(a.fields.topic, "磁铁");
    assert_eq!(a.fields.audience.students, 45);
    assert_eq!(a.fields.audience.breakdown.values().sum::<u32>(), 20);
    assert_eq!(a.fields.activities.len(), 2);
    assert!(d.store.visit(b.id).unwrap().deleted);
    assert_eq!(d.store.visits(&VisitFilter::default()).unwrap().len(), 1);
}

#[test]
fn rebuilding_the_projection_gives_the_same_rows() {
    let mut devices = team(2);
    let (a, b) = devices.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    let v = a.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    a.store
        .add_visit(&visit("石门县第二中学", 7), today())
        .unwrap();
    send(a, b);
    a.store
        .edit_visit(v.id, &[("topic".into(), "A 的主题".into())], today())
        .unwrap();
    b.store
        .edit_visit(v.id, &[("topic".into(), "B 的主题".into())], today())
        .unwrap();
    let source = b.dir.path().join("课堂.png");
    image::RgbImage::from_pixel(300, 200, image::Rgb([10, 200, 90]))
        .save(&source)
        .unwrap();
    b.store.add_photo(v.id, &source, "", true).unwrap();
    send(b, a);
    assert!(!a.store.conflicts().unwrap().is_empty());

    let tables = ["visits", "schools", "conflicts", "visit_photos"];
    let before: Vec<Vec<String>> = tables.iter().map(|t| a.rows(t)).collect();
    assert!(before.iter().all(|rows| !rows.is_empty()));
    a.store.rebuild_projection().unwrap();
    let after: Vec<Vec<String>> = tables.iter().map(|t| a.rows(t)).collect();
    assert_eq!(before, after);
}

#[test]
fn refused_input_leaves_everything_untouched() {
    let mut d = team(1).pop().unwrap();
    let v = d.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    let before = d.all_rows();

    let mut bad = visit("北山小学", -3);
    bad.date = Some("1999-01-01".into());
    let Err(Error::Invalid(errors)) = d.store.add_visit(&bad, today()) else {
        panic!("expected validation errors");
    };
    assert_eq!(
        errors.fields().collect::<Vec<_>>(),
        [Field::School, Field::Date, Field::Students]
    );
    assert!(errors.message(Lang::ZhCn).contains("找不到学校“北山小学”"));

    let edit = d.store.edit_visit(
        v.id,
        &[
            ("topic".into(), "ok".into()),
            ("donations.kits".into(), "100001".into()),
        ],
        today(),
    );
    assert!(matches!(edit, Err(Error::Invalid(_))), "{edit:?}");
    let broken_csv = format!("{REGISTRY}新学校,南山区,郊区,小学,10\n");
    match d.store.import_schools_csv(broken_csv.as_bytes()) {
        Err(Error::Registry(RegistryError::Line { line: 7, source })) => {
            assert_eq!(source.0[0].field, Field::Area)
        }
        other => panic!("expected a refused line 7, got {other:?}"),
    }
    assert_eq!(d.all_rows(), before);
    assert_eq!(d.store.visit(v.id).unwrap().fields.topic, "水的三态");
}

#[test]
fn report_follows_the_counting_rules() {
    let mut d = team(1).pop().unwrap();
    let nanshan = d.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    d.store.add_visit(&visit("南山小学", 30), today()).unwrap();
    d.store
        .add_visit(&visit("青溪县龙潭镇中心小学", 20), today())
        .unwrap();
    let deleted = d
        .store
        .add_visit(&visit("石门县第二中学", 1000), today())
        .unwrap();
    d.store.delete_visit(deleted.id).unwrap();
    let dup = d.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    d.act_as_coordinator("王协调", &["南山区", "青溪县", "石门县"]);
    d.store
        .merge_visits(&fieldlog_core::decide::MergeRequest {
            keep: nanshan.id,
            other: dup.id,
            audience: fieldlog_domain::AudienceRule::Keep,
            take: Vec::new(),
            note: String::new(),
        })
        .unwrap();
    let mut no_lecture = visit("青溪县马场乡教学点", 5);
    no_lecture.activities = vec!["hands_on".into()];
    no_lecture.donations.kits = 3;
    no_lecture.date = Some("2026-04-02".into());
    d.store.add_visit(&no_lecture, today()).unwrap();

    let all = d.store.report(&ReportFilter::default()).unwrap();
    assert_eq!(
        all,
        Report {
            visits: 4,
            schools_reached: 3,
            rural_schools: 2,
            urban_schools: 1,
            audience: 40 + 30 + 20 + 5 + 4 * 2,
            lectures: 3,
            books: 40,
            kits: 3,
            rural_lectures: 1,
            districts_covered: 2,
            teachers_trained: 0,
            duplicates_merged: 1,
            verified_visits: 0,
            unverified_visits: 4,
            courses_completed: 0,
            course_sessions: 0,
        }
    );
    let may_in_qingxi = d
        .store
        .report(&ReportFilter {
            from: Some("2026-05-01".parse().unwrap()),
            to: Some("2026-05-31".parse().unwrap()),
            district: Some(fieldlog_domain::District::parse("青溪县").unwrap()),
        })
        .unwrap();
    assert_eq!((may_in_qingxi.visits, may_in_qingxi.audience), (1, 22));

    // The registry's current area decides rural or urban.
    let csv = REGISTRY.replace("南山小学,南山区,城区", "南山小学,南山区,乡村");
    let summary = d.store.import_schools_csv(csv.as_bytes()).unwrap();
    assert_eq!(
        (summary.added, summary.updated, summary.unchanged),
        (0, 1, 4)
    );
    let now = d.store.report(&ReportFilter::default()).unwrap();
    assert_eq!((now.rural_schools, now.urban_schools), (3, 0));
}

#[test]
fn schools_are_found_by_name_or_pinyin() {
    let mut d = team(1).pop().unwrap();
    let names = |q: &str| -> Vec<String> {
        d.store
            .search_schools(q, 10)
            .unwrap()
            .into_iter()
            .map(|s| s.fields.name)
            .collect()
    };
    assert_eq!(names("nsxx"), ["南山小学"]);
    assert_eq!(names("NSXX"), ["南山小学"]);
    assert_eq!(names("nanshan")[0], "南山小学");
    assert_eq!(names("南山"), ["南山小学", "南山区第一中学"]);
    assert_eq!(names("lt")[0], "青溪县龙潭镇中心小学");
    assert!(names("xyzxyz").is_empty());
    assert!(names("%").is_empty());

    let field = d
        .store
        .add_school(
            &SchoolInput {
                name: "北坡村小".into(),
                district: "石门县".into(),
                area: "乡村".into(),
                ..Default::default()
            },
            SchoolStatus::Pending,
        )
        .unwrap();
    assert_eq!(field.fields.area, Area::Rural);
    assert_eq!(d.store.search_schools("bpcx", 5).unwrap()[0].id, field.id);
    assert_eq!(
        d.store.school(field.id).unwrap().status,
        SchoolStatus::Pending
    );
}

#[test]
fn concurrent_tallies_add_up_and_conflicts_keep_every_value() {
    let mut devices = team(2);
    let (a, b) = devices.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    let v = a.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    send(a, b);

    // Two doors: A counts 25 more students, B counts 17 more, at the same time.
    a.clock.advance(60_000);
    b.clock.advance(120_000);
    a.store
        .edit_visit(
            v.id,
            &[
                ("audience.students".into(), "65".into()),
                ("topic".into(), "声音".into()),
            ],
            today(),
        )
        .unwrap();
    b.store
        .edit_visit(
            v.id,
            &[
                ("audience.students".into(), "57".into()),
                ("topic".into(), "光".into()),
                ("notes".into(), "只有 B 改了备注".into()),
            ],
            today(),
        )
        .unwrap();
    send(a, b);
    send(b, a);

    for d in [&*a, &*b] {
        let merged = d.store.visit(v.id).unwrap();
        assert_eq!(merged.fields.audience.students, 40 + 25 + 17);
        assert_eq!(merged.fields.notes, "只有 B 改了备注");
    }
    let conflicts = a.store.conflicts().unwrap();
    assert_eq!(conflicts, b.store.conflicts().unwrap());
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, Field::Topic);
    let mut seen: Vec<(String, String, i64)> = conflicts[0]
        .values
        .iter()
        .map(|v| (v.value.clone(), v.author.clone(), v.at))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("光".to_string(), "设备2".to_string(), START_MS + 120_000),
            ("声音".to_string(), "设备1".to_string(), START_MS + 60_000),
        ]
    );

    // A coordinator picks a value: the conflict is resolved everywhere.
    a.store
        .edit_visit(v.id, &[("topic".into(), "声音与光".into())], today())
        .unwrap();
    send(a, b);
    assert!(a.store.conflicts().unwrap().is_empty());
    assert!(b.store.conflicts().unwrap().is_empty());
    assert_eq!(b.store.visit(v.id).unwrap().fields.topic, "声音与光");
}

#[test]
fn two_handles_on_one_data_dir_do_not_lose_writes() {
    let mut first = team(1).pop().unwrap();
    let mut second = fieldlog_core::Store::open(first.dir.path(), Default::default()).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            first
                .store
                .add_visit(&visit("南山小学", i), today())
                .unwrap()
                .id,
        );
        ids.push(second.add_visit(&visit("南山小学", i), today()).unwrap().id);
    }
    first.reopen();
    for id in ids {
        first.store.visit(id).unwrap();
    }
    first.store.rebuild_projection().unwrap();
    assert_eq!(
        first.store.visits(&VisitFilter::default()).unwrap().len(),
        10
    );
}

#[test]
fn long_histories_are_compacted_and_still_whole() {
    let mut d = team(1).pop().unwrap();
    let v = d.store.add_visit(&visit("南山小学", 0), today()).unwrap();
    for i in 1..=150 {
        d.store
            .edit_visit(
                v.id,
                &[("audience.students".into(), i.to_string())],
                today(),
            )
            .unwrap();
    }
    let chunks = d.rows("doc_chunks").len();
    assert!(chunks < 80, "{chunks} chunks: compaction did not run");
    d.reopen();
    assert_eq!(d.store.visit(v.id).unwrap().fields.audience.students, 150);
}

#[test]
fn opening_an_empty_dir_says_to_init_first() {
    let dir = tempfile::tempdir().unwrap();
    let err = fieldlog_core::Store::open(dir.path(), Default::default()).unwrap_err();
    assert_eq!(err.kind(), "not_initialized");
    assert!(err.message(Lang::ZhCn).contains("fieldlog init"));
}

#[test]
fn photos_attach_to_visits_and_refused_files_change_nothing() {
    let mut d = team(1).pop().unwrap();
    let v = d.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    let source = d.dir.path().join("课堂.png");
    image::RgbImage::from_fn(2400, 1200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&source)
    .unwrap();

    let photo = d.store.add_photo(v.id, &source, " 做实验 ", false).unwrap();
    assert_eq!((photo.width, photo.height), (1600, 800));
    assert_eq!(photo.caption, "做实验");
    assert!(!photo.consent, "consent is off unless given");
    assert!(d.store.photo_bytes() >= photo.display_bytes + photo.thumbnail_bytes);
    d.reopen();
    assert_eq!(
        d.store.visit(v.id).unwrap().photos,
        std::slice::from_ref(&photo)
    );

    let before = d.all_rows();
    let files = d.store.photo_bytes();
    let not_an_image = d.dir.path().join("notes.txt");
    std::fs::write(&not_an_image, "这不是照片").unwrap();
    let err = d
        .store
        .add_photo(v.id, &not_an_image, "", true)
        .unwrap_err();
    assert_eq!(err.kind(), "photo_not_an_image");
    let long_caption = "字".repeat(501);
    let err = d
        .store
        .add_photo(v.id, &source, &long_caption, true)
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert_eq!(d.all_rows(), before, "a refused photo changed the store");
    assert_eq!(d.store.photo_bytes(), files);

    d.store.remove_photo(v.id, &photo.display_sha256).unwrap();
    assert!(d.store.visit(v.id).unwrap().photos.is_empty());
    let err = d
        .store
        .remove_photo(v.id, &photo.display_sha256)
        .unwrap_err();
    assert_eq!(err.kind(), "photo_not_found");
}

#[test]
fn photo_files_wait_for_upload_and_originals_follow_the_setting() {
    let mut d = team(1).pop().unwrap();
    let v = d.store.add_visit(&visit("南山小学", 40), today()).unwrap();
    let source = d.dir.path().join("课堂.png");
    image::RgbImage::from_pixel(900, 600, image::Rgb([200, 30, 90]))
        .save(&source)
        .unwrap();
    let originals = |d: &crate::support::Device| {
        std::fs::read_dir(d.store.photo_dir().join("originals")).map_or(0, |e| e.count())
    };

    let photo = d.store.add_photo(v.id, &source, "", false).unwrap();
    assert_eq!(originals(&d), 1, "kept until uploaded by default");
    let queue = d.store.upload_queue().unwrap();
    assert_eq!((queue.photos, queue.files), (1, 2));
    assert_eq!(queue.bytes, photo.display_bytes + photo.thumbnail_bytes);
    // The same photo again is stored once and queued once.
    let other = d.store.add_visit(&visit("南山小学", 5), today()).unwrap();
    d.store.add_photo(other.id, &source, "", false).unwrap();
    assert_eq!(d.store.upload_queue().unwrap(), queue);

    // A photo nobody shows any more does not go.
    d.store.remove_photo(v.id, &photo.display_sha256).unwrap();
    assert_eq!(
        d.store.upload_queue().unwrap(),
        queue,
        "another visit shows it"
    );
    d.store.delete_visit(other.id).unwrap();
    assert_eq!(d.store.upload_queue().unwrap().files, 0);

    d.store
        .set_originals_policy(fieldlog_core::OriginalsPolicy::Drop)
        .unwrap();
    assert_eq!(originals(&d), 0);
    d.reopen();
    assert_eq!(
        d.store.settings().unwrap().originals,
        fieldlog_core::OriginalsPolicy::Drop
    );
}
