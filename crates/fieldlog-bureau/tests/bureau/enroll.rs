use crate::support::*;
use automerge::ActorId;
use fieldlog_domain::Role;
use fieldlog_domain::sync::{EnrollRequest, Refusal};
use std::time::Duration;

fn request(code: &str, actor: &ActorId) -> EnrollRequest {
    EnrollRequest {
        code: code.to_string(),
        device_name: "李老师的手机".into(),
        actors: vec![actor.to_hex_string()],
        signing_key: None,
    }
}

fn bad_code(server: &Server, request: &EnrollRequest) -> String {
    let (status, body) = server.post_enroll(request).unwrap_err();
    assert_eq!((status, body.error.reason), (403, Refusal::BadCode));
    body.error.message
}

#[test]
fn a_code_enrolls_one_device_with_its_team_and_region() {
    let server = Server::with_teams();
    let code = server.code("caravan-1", "李老师", Role::Volunteer);
    let actor = ActorId::random();
    // Typed by hand: lower case, with a dash.
    let typed = format!("{}-{}", &code[..5], &code[5..]).to_lowercase();
    let enrolled = server.post_enroll(&request(&typed, &actor)).unwrap();

    assert_eq!(enrolled.team, "caravan-1");
    assert_eq!(enrolled.member, "李老师");
    assert_eq!(enrolled.role, Role::Volunteer);
    assert_eq!(enrolled.districts, ["南山区"]);
    assert_eq!(enrolled.token.len(), 64);

    let device = server.bureau.authenticate(&enrolled.token).unwrap();
    assert_eq!(device.id.to_string(), enrolled.device_id);
    assert_eq!(device.actors, [actor]);
    assert_eq!(device.name, "李老师的手机");
    // The token works for a sync round.
    let answer = server
        .sync(
            &enrolled.token,
            &crate::support::request(0, Vec::new(), 100),
        )
        .unwrap();
    assert_eq!((answer.accepted, answer.changes.len()), (0, 0));

    // Only the hashes are stored.
    let stored =
        server.texts("SELECT code_hash FROM codes UNION ALL SELECT token_hash FROM devices");
    assert!(
        stored.len() >= 2 && stored.iter().all(|h| h.len() == 64),
        "{stored:?}"
    );
    let dump = stored.concat();
    assert!(!dump.contains(&code) && !dump.contains(&enrolled.token));
}

#[test]
fn a_coordinator_code_gives_the_bureau_region() {
    let server = Server::with_teams();
    let coordinator = server.device("bureau", "王主任", Role::Coordinator);
    let device = server.bureau.authenticate(&coordinator.token).unwrap();
    assert_eq!(device.role, Role::Coordinator);
    let teams = server.bureau.teams().unwrap();
    let scope = fieldlog_bureau::Scope::of(&device, &teams);
    assert_eq!(
        scope.keys(),
        [
            "team:bureau",
            "team:caravan-1",
            "district:北山区",
            "district:南山区"
        ]
    );
}

#[test]
fn a_used_code_is_refused() {
    let server = Server::with_teams();
    let code = server.code("caravan-1", "李老师", Role::Volunteer);
    server
        .post_enroll(&request(&code, &ActorId::random()))
        .unwrap();
    let message = bad_code(&server, &request(&code, &ActorId::random()));
    assert!(message.contains("already used"), "{message}");
    assert_eq!(server.bureau.devices().unwrap().len(), 1);
}

#[test]
fn an_expired_code_is_refused() {
    let server = Server::with_teams();
    let code = server
        .bureau
        .issue_code(
            "caravan-1",
            "李老师",
            Role::Volunteer,
            Duration::from_secs(3600),
        )
        .unwrap();
    assert_eq!(code.expires_at, T0 + HOUR_MS);
    server.clock.advance(HOUR_MS);
    let message = bad_code(&server, &request(&code.code, &ActorId::random()));
    assert!(message.contains("expired"), "{message}");
    assert!(server.bureau.devices().unwrap().is_empty());
}

#[test]
fn an_unknown_code_is_refused() {
    let server = Server::with_teams();
    server.code("caravan-1", "李老师", Role::Volunteer);
    bad_code(&server, &request("ABCDEFGHJK", &ActorId::random()));
    assert!(server.bureau.devices().unwrap().is_empty());
}

#[test]
fn an_actor_registered_to_another_device_is_refused_and_the_code_stays_good() {
    let server = Server::with_teams();
    let first = server.device("caravan-1", "李老师", Role::Volunteer);
    let code = server.code("caravan-1", "张老师", Role::Volunteer);
    let (status, body) = server
        .post_enroll(&request(&code, &first.actor))
        .unwrap_err();
    assert_eq!((status, body.error.reason), (403, Refusal::ForgedActor));
    // Nor may a device claim the bureau's own actor.
    let bureau_actor = server.bureau.storage().bureau_actor().clone();
    let (status, body) = server
        .post_enroll(&request(&code, &bureau_actor))
        .unwrap_err();
    assert_eq!((status, body.error.reason), (403, Refusal::ForgedActor));
    // Nothing was spent: the code still enrolls a device with its own actor.
    server
        .post_enroll(&request(&code, &ActorId::random()))
        .unwrap();
    assert_eq!(server.bureau.devices().unwrap().len(), 2);
}

#[test]
fn a_malformed_enrollment_is_refused() {
    let server = Server::with_teams();
    let code = server.code("caravan-1", "李老师", Role::Volunteer);
    for bad in [
        EnrollRequest {
            actors: vec!["not hex".into()],
            ..request(&code, &ActorId::random())
        },
        EnrollRequest {
            actors: Vec::new(),
            ..request(&code, &ActorId::random())
        },
        EnrollRequest {
            device_name: "  ".into(),
            ..request(&code, &ActorId::random())
        },
    ] {
        let (status, body) = server.post_enroll(&bad).unwrap_err();
        assert_eq!(
            (status, body.error.reason),
            (400, Refusal::Malformed),
            "{bad:?}"
        );
    }
    assert!(server.bureau.devices().unwrap().is_empty());
}

#[test]
fn a_revoked_device_is_listed_as_revoked() {
    let server = Server::with_teams();
    let device = server.device("caravan-1", "李老师", Role::Volunteer);
    server.clock.advance(HOUR_MS);
    let revoked = server.bureau.revoke(&device.device_id).unwrap();
    assert_eq!(revoked.revoked_at, Some(T0 + HOUR_MS));
    let listed = server.bureau.devices().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(T0 + HOUR_MS));
    assert!(matches!(
        server.bureau.revoke("0197a0a0-0000-7000-8000-000000000000"),
        Err(fieldlog_bureau::Error::UnknownDevice(_))
    ));
}

#[test]
fn members_are_the_enrolled_ones_a_device_may_see() {
    let server = Server::with_teams();
    let li = server.device("caravan-1", "李老师", Role::Volunteer);
    let zhang = server.device("caravan-1", "张老师", Role::Volunteer);
    server.device("caravan-1", "张老师", Role::Volunteer); // a second phone: listed once
    let gone = server.device("caravan-1", "赵老师", Role::Volunteer);
    server.device("caravan-2", "西山的老师", Role::Volunteer);
    let coordinator = server.device("bureau", "王协调", Role::Coordinator);
    server.bureau.revoke(&gone.device_id).unwrap();
    // A code issued but never redeemed is no member yet.
    server.code("caravan-1", "未加入", Role::Volunteer);

    let names = |token: &str| {
        let (status, body) = server.members(Some(token));
        assert_eq!(status, 200, "{body}");
        body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}/{}/{}",
                    m["team"].as_str().unwrap(),
                    m["name"].as_str().unwrap(),
                    m["role"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&li.token),
        ["caravan-1/张老师/volunteer", "caravan-1/李老师/volunteer"]
    );
    assert_eq!(names(&zhang.token), names(&li.token));
    // The coordinator's region (南山区, 北山区): its own team and caravan-1, not caravan-2.
    assert_eq!(
        names(&coordinator.token),
        [
            "bureau/王协调/coordinator",
            "caravan-1/张老师/volunteer",
            "caravan-1/李老师/volunteer",
        ]
    );
    let (status, body) = server.members(None);
    assert_eq!(
        (status, body["error"]["reason"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = server.members(Some(&gone.token));
    assert_eq!(status, 401, "a revoked device is refused");
}
