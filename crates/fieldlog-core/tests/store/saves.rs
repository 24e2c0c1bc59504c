//! Saving a visit with its photos: one transaction and one document change, refused as a
//! whole; photos ingested once when staged, and staged photos that are never saved cleaned.

use crate::support::{Device, team, today, visit};
use fieldlog_core::photo::stored_path;
use fieldlog_core::staging::STAGED_PHOTO_TTL_MS;
use fieldlog_core::{Error, PhotoToAttach, VisitFilter, VisitSave};
use fieldlog_domain::{Field, Visit};
use std::path::Path;

fn png(shade: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([shade, (x / 3) as u8, (y / 2) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn attach(token: &str, caption: &str) -> PhotoToAttach {
    PhotoToAttach {
        token: token.into(),
        caption: caption.into(),
        consent: true,
    }
}

/// Saves a new visit at 南山小学 with these staged photos.
fn save_new(d: &mut Device, attach: Vec<PhotoToAttach>) -> Visit {
    let save = VisitSave {
        id: None,
        input: visit("南山小学", 40),
        attach,
        remove: Vec::new(),
    };
    d.store.save_visit(&save, today()).unwrap()
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

#[test]
fn a_too_long_caption_refuses_the_whole_save_and_a_fixed_retry_saves_one_visit() {
    let mut d = team(1).pop().unwrap();
    let staged = d.store.stage_photo(&png(10)).unwrap();
    let before = d.all_rows();
    let changes_before = d.changes();

    let mut input = visit("南山小学", 40);
    input.audience.teachers = -1;
    let mut save = VisitSave {
        id: None,
        input,
        attach: vec![attach(&staged.token, &"长".repeat(501))],
        remove: Vec::new(),
    };
    match d.store.save_visit(&save, today()) {
        Err(Error::Invalid(errors)) => {
            let fields: Vec<Field> = errors.fields().collect();
            assert_eq!(fields, [Field::Teachers, Field::Caption], "{errors:?}");
        }
        other => panic!("expected every refused field, got {other:?}"),
    }
    assert_eq!(d.all_rows(), before);
    assert_eq!(d.changes(), changes_before);

    save.input.audience.teachers = 2;
    save.attach[0].caption = "实验".into();
    let saved = d.store.save_visit(&save, today()).unwrap();
    let visits = d.store.visits(&VisitFilter::default()).unwrap();
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].id, saved.id);
    assert_eq!(visits[0].photos.len(), 1);
    assert_eq!(visits[0].photos[0].caption, "实验");
    // The token was used up: saving it again attaches nothing twice.
    assert!(matches!(
        d.store.save_visit(&save, today()),
        Err(Error::StagedPhotoNotFound { .. })
    ));
    assert_eq!(d.store.visits(&VisitFilter::default()).unwrap().len(), 1);
}

#[test]
fn a_visit_with_its_photos_is_one_change_and_an_edit_too() {
    let mut d = team(1).pop().unwrap();
    let first = d.store.stage_photo(&png(10)).unwrap();
    let second = d.store.stage_photo(&png(200)).unwrap();
    let start = d.changes();
    let saved = save_new(
        &mut d,
        vec![attach(&first.token, "一"), attach(&second.token, "二")],
    );
    assert_eq!(d.changes(), start + 1);
    assert_eq!(saved.photos.len(), 2);
    assert_eq!(
        d.rows("photo_files").len(),
        2 * 3,
        "thumbnail, display, original"
    );
    assert_eq!(files_in(&d.dir.path().join("staging")), 0);

    let third = d.store.stage_photo(&png(90)).unwrap();
    let mut input = visit("南山小学", 45);
    input.topic = "光的折射".into();
    let edited = d
        .store
        .save_visit(
            &VisitSave {
                id: Some(saved.id),
                input,
                attach: vec![attach(&third.token, "三")],
                remove: vec![first.display_sha256.clone()],
            },
            today(),
        )
        .unwrap();
    assert_eq!(d.changes(), start + 2);
    assert_eq!(edited.fields.topic, "光的折射");
    assert_eq!(edited.fields.audience.students, 45);
    let mut captions: Vec<&str> = edited.photos.iter().map(|p| p.caption.as_str()).collect();
    captions.sort();
    assert_eq!(captions, ["三", "二"]);

    // Saving what is stored writes nothing.
    let mut same = visit("南山小学", 45);
    same.topic = "光的折射".into();
    let save = VisitSave {
        id: Some(saved.id),
        input: same,
        ..VisitSave::default()
    };
    d.store.save_visit(&save, today()).unwrap();
    assert_eq!(d.changes(), start + 2);
}

#[test]
fn a_staged_photo_is_attached_without_being_decoded_again() {
    let mut d = team(1).pop().unwrap();
    let staged = d.store.stage_photo(&png(10)).unwrap();
    let photos = d.store.photo_dir();
    assert!(stored_path(&photos, &staged.display_sha256).is_file());
    // Were the source decoded again at save, this would refuse the save.
    std::fs::write(
        d.dir
            .path()
            .join("staging")
            .join(format!("{}.source", staged.token)),
        b"no longer an image",
    )
    .unwrap();
    let saved = save_new(&mut d, vec![attach(&staged.token, "")]);
    assert_eq!(saved.photos[0].display_sha256, staged.display_sha256);
}

#[test]
fn staged_photos_never_saved_go_after_a_day_or_when_discarded() {
    let mut d = team(1).pop().unwrap();
    let staging = d.dir.path().join("staging");
    let photos = d.store.photo_dir();
    let kept = d.store.stage_photo(&png(10)).unwrap();
    let abandoned = d.store.stage_photo(&png(200)).unwrap();
    let discarded = d.store.stage_photo(&png(90)).unwrap();
    // The same picture picked twice: its files stay while the other pick still waits.
    let twin = d.store.stage_photo(&png(90)).unwrap();
    assert_eq!(twin.display_sha256, discarded.display_sha256);
    save_new(&mut d, vec![attach(&kept.token, "")]);

    d.store
        .discard_staged_photos(std::slice::from_ref(&discarded.token))
        .unwrap();
    assert!(stored_path(&photos, &twin.display_sha256).is_file());
    d.store
        .discard_staged_photos(std::slice::from_ref(&twin.token))
        .unwrap();
    assert!(!stored_path(&photos, &twin.display_sha256).is_file());
    assert!(!stored_path(&photos, &twin.thumbnail_sha256).is_file());

    // Younger than a day, a staged photo survives reopening the store.
    d.clock.advance(STAGED_PHOTO_TTL_MS - 1);
    d.reopen();
    assert_eq!(
        files_in(&staging),
        2,
        "the abandoned photo's record and source"
    );
    d.clock.advance(1);
    d.reopen();
    assert_eq!(files_in(&staging), 0);
    assert!(!stored_path(&photos, &abandoned.display_sha256).is_file());
    assert!(!stored_path(&photos, &abandoned.thumbnail_sha256).is_file());
    // The saved photo's files stay.
    assert!(stored_path(&photos, &kept.display_sha256).is_file());
    assert!(stored_path(&photos, &kept.thumbnail_sha256).is_file());
}
