use super::*;

fn owner() -> Owner {
    Owner::of_account("123456789012")
}

#[test]
fn the_owner_id_is_a_stable_64_digit_canonical_id_per_account() {
    let a = owner();
    assert_eq!(a.id.len(), 64);
    assert!(a.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a, owner());
    assert_ne!(a.id, Owner::of_account("000000000001").id);
}

#[test]
fn canned_acls_stand_for_s3_s_grants() {
    use Grantee::*;
    use Permission::*;
    let g = |name, bucket| Acl::canned(name, bucket).unwrap().grants().to_vec();
    assert_eq!(g("private", true), vec![(Owner, FullControl)]);
    assert_eq!(
        g("public-read", false),
        vec![(Owner, FullControl), (AllUsers, Read)]
    );
    assert_eq!(
        g("public-read-write", true),
        vec![(Owner, FullControl), (AllUsers, Read), (AllUsers, Write)]
    );
    assert_eq!(
        g("authenticated-read", false),
        vec![(Owner, FullControl), (AuthenticatedUsers, Read)]
    );
    assert_eq!(g("bucket-owner-full-control", false), vec![(Owner, FullControl)]);
    assert_eq!(
        g("log-delivery-write", true),
        vec![(Owner, FullControl), (LogDelivery, Write), (LogDelivery, ReadAcp)]
    );
    // Object-only names on a bucket, bucket-only names on an object and
    // unknown names are refused.
    for (name, bucket) in [
        ("bucket-owner-read", true),
        ("log-delivery-write", false),
        ("public", false),
    ] {
        assert!(
            matches!(Acl::canned(name, bucket), Err(AclError::InvalidArgument(_))),
            "{name}"
        );
    }
}

#[test]
fn grant_headers_name_the_owner_groups_or_nobody_known() {
    let o = owner();
    let id = format!("id=\"{}\"", o.id);
    let acl = Acl::from_headers(
        &o,
        &[
            (Permission::FullControl, &id),
            (
                Permission::Read,
                "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\", uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        acl.grants(),
        &[
            (Grantee::Owner, Permission::FullControl),
            (Grantee::AllUsers, Permission::Read),
            (Grantee::AuthenticatedUsers, Permission::Read)
        ]
    );
    assert!(acl.is_public());
    let refused = |v: &str| Acl::from_headers(&o, &[(Permission::Read, v)]).unwrap_err();
    assert_eq!(
        refused("emailAddress=\"a@example.com\""),
        AclError::UnresolvableEmail
    );
    assert!(matches!(refused("id=\"0123\""), AclError::InvalidArgument(_)));
    assert!(matches!(
        refused("uri=\"http://example.com/g\""),
        AclError::InvalidArgument(_)
    ));
    assert!(matches!(refused("name=\"x\""), AclError::InvalidArgument(_)));
    assert!(matches!(refused("nonsense"), AclError::InvalidArgument(_)));
    assert_eq!(refused(""), AclError::Malformed);
}

#[test]
fn grants_allow_by_requester_and_full_control_covers_everything() {
    let public_read = Acl::canned("public-read", false).unwrap();
    assert!(public_read.allows(Requester::Anonymous, Permission::Read, false));
    assert!(!public_read.allows(Requester::Anonymous, Permission::Write, false));
    assert!(
        !public_read.allows(Requester::Anonymous, Permission::Read, true),
        "ignored"
    );
    let authenticated = Acl::canned("authenticated-read", false).unwrap();
    assert!(!authenticated.allows(Requester::Anonymous, Permission::Read, false));
    assert!(authenticated.allows(Requester::Authenticated, Permission::Read, false));
    // The owner's grants reach nobody through the list.
    let private = Acl::default();
    assert!(!private.allows(Requester::Authenticated, Permission::Read, false));
    let full = Acl::from_grants(vec![(Grantee::AllUsers, Permission::FullControl)]).unwrap();
    for p in Permission::ALL {
        assert!(full.allows(Requester::Anonymous, p, false), "{p:?}");
    }
    let logs = Acl::canned("log-delivery-write", true).unwrap();
    assert!(!logs.is_public());
    assert!(!logs.allows(Requester::Authenticated, Permission::Write, false));
    assert!(
        Acl::canned("bucket-owner-full-control", false)
            .unwrap()
            .owner_only()
    );
    assert!(!logs.owner_only());
}

#[test]
fn lists_round_trip_through_their_stored_forms() {
    for acl in [
        Acl::default(),
        Acl::canned("public-read-write", true).unwrap(),
        Acl::canned("log-delivery-write", true).unwrap(),
    ] {
        assert_eq!(Acl::decode(&acl.encode()), acl);
        assert_eq!(Acl::from_codes(&acl.to_codes()), acl);
    }
    assert!(Acl::default().to_codes().is_empty(), "the default is not stored");
    // Codes of a newer version are skipped, not misread.
    assert_eq!(
        Acl::from_codes(&[(9, 1), (2, 1)]).grants(),
        &[(Grantee::AllUsers, Permission::Read)]
    );
    assert_eq!(Acl::decode(b"\xff"), Acl::default());
}

#[test]
fn actions_map_to_the_permissions_s3_documents() {
    assert_eq!(bucket_permission("s3:ListBucket"), Some(Permission::Read));
    assert_eq!(bucket_permission("s3:PutObject"), Some(Permission::Write));
    assert_eq!(bucket_permission("s3:PutBucketAcl"), Some(Permission::WriteAcp));
    assert_eq!(bucket_permission("s3:PutBucketPolicy"), None);
    assert_eq!(object_permission("s3:GetObjectVersion"), Some(Permission::Read));
    assert_eq!(object_permission("s3:GetObjectAcl"), Some(Permission::ReadAcp));
    assert_eq!(object_permission("s3:DeleteObject"), None);
}

#[test]
fn ownership_and_public_access_blocks_parse_and_store() {
    for o in ["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"] {
        assert_eq!(Ownership::parse(o).unwrap().as_str(), o);
    }
    assert!(Ownership::parse("Owner").is_err());
    assert!(!Ownership::BucketOwnerEnforced.acls_enabled());
    let b = PublicAccessBlock {
        block_public_acls: true,
        restrict_public_buckets: true,
        ..Default::default()
    };
    assert_eq!(PublicAccessBlock::decode(&b.encode()), b);
    assert!(
        PublicAccessBlock::decode(&[]).block_public_policy,
        "unreadable blocks"
    );
    assert_eq!(
        b.check_acl(&Acl::canned("public-read", false).unwrap()),
        Err(AclError::Blocked)
    );
    assert!(b.check_acl(&Acl::default()).is_ok());
}
