//! Authentication and authorization: enabling auth, root's rules, user and role management,
//! key, range and prefix permissions for every RPC that touches keys, admin-only RPCs, tokens
//! (simple and JWT), persistence across restarts and in snapshots.

use kvd::proto::authpb::{permission::Type as PermType, Permission, UserAddOptions};
use kvd::proto::etcdserverpb::auth_client::AuthClient;
use kvd::proto::etcdserverpb::cluster_client::ClusterClient;
use kvd::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use kvd::proto::etcdserverpb::{
    compare, request_op, watch_request::RequestUnion, AuthDisableRequest, AuthEnableRequest,
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGrantPermissionRequest,
    AuthRoleListRequest, AuthRoleRevokePermissionRequest, AuthStatusRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest, AuthenticateRequest,
    CompactionRequest, Compare, DeleteRangeRequest, HashKvRequest, LeaseGrantRequest,
    LeaseRevokeRequest, MemberAddRequest, PutRequest, RangeRequest, RequestOp, SnapshotRequest,
    TxnRequest, WatchCreateRequest, WatchRequest,
};
use kvd::server;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::common::{config_with, within, Member};

const ROOT_PW: &str = "rootpw";

/// A request carrying `token` the way etcd clients send it.
fn req<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("token", t.parse().expect("ascii token"));
    }
    r
}

#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, Status>, code: Code, message: &str) {
    match r {
        Ok(v) => panic!("expected {code:?} {message:?}, got {v:?}"),
        Err(s) => assert_eq!((s.code(), s.message()), (code, message)),
    }
}

#[track_caller]
fn denied<T: std::fmt::Debug>(r: Result<T, Status>) {
    refused(r, Code::PermissionDenied, "etcdserver: permission denied");
}

/// Clients of one member, acting with one token (or none).
#[derive(Clone, Debug)]
struct As {
    chan: Channel,
    token: Option<String>,
}

impl As {
    fn auth(&self) -> AuthClient<Channel> {
        AuthClient::new(self.chan.clone())
    }

    fn t(&self) -> Option<&str> {
        self.token.as_deref()
    }

    async fn put(&self, key: &str) -> Result<i64, Status> {
        let mut kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(self.chan.clone());
        let p = PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            ..Default::default()
        };
        let r = kv.put(req(p, self.t())).await?;
        Ok(r.into_inner().header.expect("header").revision)
    }

    async fn put_req(&self, p: PutRequest) -> Result<(), Status> {
        let mut kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(self.chan.clone());
        kv.put(req(p, self.t())).await.map(|_| ())
    }

    async fn range(&self, key: &str, range_end: &str) -> Result<Vec<String>, Status> {
        let mut kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(self.chan.clone());
        let r = RangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            ..Default::default()
        };
        let resp = kv.range(req(r, self.t())).await?.into_inner();
        Ok(resp
            .kvs
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect())
    }

    async fn delete(&self, key: &str, range_end: &str, prev_kv: bool) -> Result<i64, Status> {
        let mut kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(self.chan.clone());
        let d = DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv,
        };
        Ok(kv
            .delete_range(req(d, self.t()))
            .await?
            .into_inner()
            .deleted)
    }

    async fn txn(&self, t: TxnRequest) -> Result<bool, Status> {
        let mut kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(self.chan.clone());
        Ok(kv.txn(req(t, self.t())).await?.into_inner().succeeded)
    }

    async fn authenticate(&self, name: &str, password: &str) -> Result<As, Status> {
        let a = AuthenticateRequest {
            name: name.into(),
            password: password.into(),
        };
        let token = self
            .auth()
            .authenticate(req(a, self.t()))
            .await?
            .into_inner()
            .token;
        Ok(As {
            chan: self.chan.clone(),
            token: Some(token),
        })
    }

    async fn user_add(&self, name: &str, password: &str) -> Result<(), Status> {
        let u = AuthUserAddRequest {
            name: name.into(),
            password: password.into(),
            options: None,
        };
        self.auth().user_add(req(u, self.t())).await.map(|_| ())
    }

    async fn role_add(&self, name: &str) -> Result<(), Status> {
        self.auth()
            .role_add(req(AuthRoleAddRequest { name: name.into() }, self.t()))
            .await
            .map(|_| ())
    }

    async fn grant_role(&self, user: &str, role: &str) -> Result<(), Status> {
        let g = AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        };
        self.auth()
            .user_grant_role(req(g, self.t()))
            .await
            .map(|_| ())
    }

    async fn grant(
        &self,
        role: &str,
        key: &str,
        range_end: &str,
        t: PermType,
    ) -> Result<(), Status> {
        let perm = Permission {
            perm_type: t as i32,
            key: key.into(),
            range_end: range_end.into(),
        };
        let g = AuthRoleGrantPermissionRequest {
            name: role.into(),
            perm: Some(perm),
        };
        self.auth()
            .role_grant_permission(req(g, self.t()))
            .await
            .map(|_| ())
    }

    async fn revoke(&self, role: &str, key: &str, range_end: &str) -> Result<(), Status> {
        let r = AuthRoleRevokePermissionRequest {
            role: role.into(),
            key: key.into(),
            range_end: range_end.into(),
        };
        self.auth()
            .role_revoke_permission(req(r, self.t()))
            .await
            .map(|_| ())
    }

    async fn watch_create(
        &self,
        key: &str,
        range_end: &str,
    ) -> kvd::proto::etcdserverpb::WatchResponse {
        let mut w = kvd::proto::etcdserverpb::watch_client::WatchClient::new(self.chan.clone());
        let (tx, rx) = mpsc::channel(4);
        let create = WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            ..Default::default()
        };
        tx.send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        })
        .await
        .expect("send");
        let mut stream = w
            .watch(req(ReceiverStream::new(rx), self.t()))
            .await
            .expect("watch")
            .into_inner();
        let first = stream
            .message()
            .await
            .expect("stream")
            .expect("first response");
        drop(tx);
        first
    }
}

async fn anonymous(m: &Member) -> As {
    As {
        chan: m.channel().await,
        token: None,
    }
}

/// Creates root (with the root role) and enables auth; returns root's session.
async fn enable_auth(m: &Member) -> As {
    let anon = anonymous(m).await;
    anon.user_add("root", ROOT_PW).await.expect("add root");
    anon.role_add("root").await.expect("add role root");
    anon.grant_role("root", "root").await.expect("grant root");
    anon.auth()
        .auth_enable(AuthEnableRequest {})
        .await
        .expect("enable");
    anon.authenticate("root", ROOT_PW)
        .await
        .expect("root logs in")
}

fn op_put(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.into(),
            value: b"t".to_vec(),
            ..Default::default()
        })),
    }
}

fn op_range(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

fn cmp_exists(key: &str) -> Compare {
    Compare {
        result: compare::CompareResult::Greater as i32,
        target: compare::CompareTarget::Version as i32,
        key: key.into(),
        target_union: Some(compare::TargetUnion::Version(0)),
        range_end: Vec::new(),
    }
}

#[tokio::test]
async fn enabling_auth_follows_etcds_root_rules() {
    let m = Member::start().await;
    within(async {
        let anon = anonymous(&m).await;
        let mut auth = anon.auth();
        refused(
            auth.auth_enable(AuthEnableRequest {}).await,
            Code::FailedPrecondition,
            "etcdserver: root user does not exist",
        );
        refused(
            anon.authenticate("root", ROOT_PW).await,
            Code::FailedPrecondition,
            "etcdserver: authentication is not enabled",
        );
        anon.user_add("root", ROOT_PW).await.expect("add root");
        refused(
            auth.auth_enable(AuthEnableRequest {}).await,
            Code::FailedPrecondition,
            "etcdserver: root user does not have root role",
        );
        anon.role_add("root").await.expect("add role root");
        anon.grant_role("root", "root").await.expect("grant");
        let status = auth
            .auth_status(AuthStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert!(!status.enabled);
        auth.auth_enable(AuthEnableRequest {})
            .await
            .expect("enable");
        let after = auth
            .auth_status(AuthStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert!(after.enabled);
        assert_eq!(
            after.auth_revision, status.auth_revision,
            "enabling keeps the revision"
        );

        // no credentials: every key operation needs a user
        let empty = (Code::InvalidArgument, "etcdserver: user name is empty");
        refused(anon.put("k").await, empty.0, empty.1);
        refused(anon.range("k", "").await, empty.0, empty.1);
        refused(anon.role_add("x").await, empty.0, empty.1);
        let failed = "etcdserver: authentication failed, invalid user ID or password";
        refused(
            anon.authenticate("root", "wrong").await,
            Code::InvalidArgument,
            failed,
        );
        refused(
            anon.authenticate("nobody", "x").await,
            Code::InvalidArgument,
            failed,
        );
        let forged = As {
            chan: anon.chan.clone(),
            token: Some("abcdefghijklmnop.3".into()),
        };
        refused(
            forged.put("k").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );
        let shapeless = As {
            chan: anon.chan.clone(),
            token: Some("nonsense".into()),
        };
        refused(
            shapeless.range("k", "").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );

        // root may do everything, but not lock everyone out
        let root = anon
            .authenticate("root", ROOT_PW)
            .await
            .expect("root logs in");
        root.put("k").await.expect("root writes");
        assert_eq!(
            root.range("\0", "\0").await.expect("root reads all"),
            vec!["k"]
        );
        let mgmt = (Code::InvalidArgument, "etcdserver: invalid auth management");
        let mut ra = root.auth();
        refused(
            ra.user_delete(req(
                AuthUserDeleteRequest {
                    name: "root".into(),
                },
                root.t(),
            ))
            .await,
            mgmt.0,
            mgmt.1,
        );
        refused(
            ra.role_delete(req(
                AuthRoleDeleteRequest {
                    role: "root".into(),
                },
                root.t(),
            ))
            .await,
            mgmt.0,
            mgmt.1,
        );
        let rr = AuthUserRevokeRoleRequest {
            name: "root".into(),
            role: "root".into(),
        };
        refused(ra.user_revoke_role(req(rr, root.t())).await, mgmt.0, mgmt.1);

        // disabling: only root, and it drops every token
        refused(
            auth.auth_disable(AuthDisableRequest {}).await,
            Code::InvalidArgument,
            "etcdserver: user name is empty",
        );
        ra.auth_disable(req(AuthDisableRequest {}, root.t()))
            .await
            .expect("disable");
        let off = auth
            .auth_status(AuthStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert!(!off.enabled);
        assert_eq!(
            off.auth_revision,
            after.auth_revision + 1,
            "disabling bumps the revision"
        );
        anon.put("k2").await.expect("anyone writes with auth off");
        refused(
            root.put("k3").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );
    })
    .await;
}

#[tokio::test]
async fn users_and_roles_are_managed_as_in_etcd() {
    let m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let mut a = root.auth();
        let t = root.t();
        root.user_add("alice", "apw").await.expect("add alice");
        refused(
            root.user_add("alice", "x").await,
            Code::FailedPrecondition,
            "etcdserver: user name already exists",
        );
        refused(
            root.user_add("", "x").await,
            Code::InvalidArgument,
            "etcdserver: user name is empty",
        );
        let cn_user = AuthUserAddRequest {
            name: "cn-only".into(),
            password: String::new(),
            options: Some(UserAddOptions { no_password: true }),
        };
        a.user_add(req(cn_user, t)).await.expect("no-password user");
        refused(
            root.authenticate("cn-only", "").await,
            Code::Unknown,
            "auth: authentication failed, password was given for no password user",
        );
        let users = a
            .user_list(req(AuthUserListRequest {}, t))
            .await
            .expect("list")
            .into_inner()
            .users;
        assert_eq!(users, vec!["alice", "cn-only", "root"]);

        refused(
            root.role_add("").await,
            Code::InvalidArgument,
            "etcdserver: role name is empty",
        );
        root.role_add("app").await.expect("role");
        refused(
            root.role_add("app").await,
            Code::FailedPrecondition,
            "etcdserver: role name already exists",
        );
        refused(
            root.grant_role("alice", "nope").await,
            Code::FailedPrecondition,
            "etcdserver: role name not found",
        );
        refused(
            root.grant_role("bob", "app").await,
            Code::FailedPrecondition,
            "etcdserver: user name not found",
        );
        root.grant("app", "/app/", "/app0", PermType::Readwrite)
            .await
            .expect("grant prefix");
        root.grant("app", "/a", "", PermType::Read)
            .await
            .expect("grant key");
        root.grant("app", "/a", "", PermType::Write)
            .await
            .expect("regrant updates the type");
        refused(
            root.grant("nope", "k", "", PermType::Read).await,
            Code::FailedPrecondition,
            "etcdserver: role name not found",
        );
        let perms = a
            .role_get(req(AuthRoleGetRequest { role: "app".into() }, t))
            .await
            .expect("role get")
            .into_inner()
            .perm;
        let shown: Vec<(String, String, i32)> = perms
            .iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.key).into(),
                    String::from_utf8_lossy(&p.range_end).into(),
                    p.perm_type,
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ("/a".into(), String::new(), PermType::Write as i32),
                ("/app/".into(), "/app0".into(), PermType::Readwrite as i32),
            ]
        );
        refused(
            root.revoke("app", "/zzz", "").await,
            Code::FailedPrecondition,
            "etcdserver: permission is not granted to the role",
        );
        root.revoke("app", "/a", "").await.expect("revoke");
        root.grant_role("alice", "app").await.expect("grant app");
        let roles = a
            .user_get(req(
                AuthUserGetRequest {
                    name: "alice".into(),
                },
                t,
            ))
            .await
            .expect("user get")
            .into_inner()
            .roles;
        assert_eq!(roles, vec!["app"]);
        let rr = AuthUserRevokeRoleRequest {
            name: "alice".into(),
            role: "other".into(),
        };
        refused(
            a.user_revoke_role(req(rr, t)).await,
            Code::FailedPrecondition,
            "etcdserver: role is not granted to the user",
        );
        let roles = a
            .role_list(req(AuthRoleListRequest {}, t))
            .await
            .expect("roles")
            .into_inner()
            .roles;
        assert_eq!(roles, vec!["app", "root"]);

        // changing a password invalidates the user's tokens
        let alice = root
            .authenticate("alice", "apw")
            .await
            .expect("alice logs in");
        alice.put("/app/1").await.expect("alice writes");
        let cp = AuthUserChangePasswordRequest {
            name: "alice".into(),
            password: "new".into(),
        };
        a.user_change_password(req(cp, t))
            .await
            .expect("change password");
        refused(
            alice.put("/app/2").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );
        refused(
            root.authenticate("alice", "apw").await,
            Code::InvalidArgument,
            "etcdserver: authentication failed, invalid user ID or password",
        );
        let alice = root
            .authenticate("alice", "new")
            .await
            .expect("new password");
        alice.put("/app/2").await.expect("alice writes again");

        // deleting a role takes it from its users; deleting a user kills its tokens
        a.role_delete(req(AuthRoleDeleteRequest { role: "app".into() }, t))
            .await
            .expect("delete role");
        let roles = a
            .user_get(req(
                AuthUserGetRequest {
                    name: "alice".into(),
                },
                t,
            ))
            .await
            .expect("user get")
            .into_inner()
            .roles;
        assert!(roles.is_empty());
        denied(alice.put("/app/3").await);
        a.user_delete(req(
            AuthUserDeleteRequest {
                name: "alice".into(),
            },
            t,
        ))
        .await
        .expect("delete");
        refused(
            alice.put("/app/3").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );
        refused(
            a.user_delete(req(
                AuthUserDeleteRequest {
                    name: "alice".into(),
                },
                t,
            ))
            .await,
            Code::FailedPrecondition,
            "etcdserver: user name not found",
        );
    })
    .await;
}

/// alice: read-write on the prefix `/app/`, read on the key `/ro`, write on `[w/a, w/m)`.
async fn alice_with_permissions(root: &As) -> As {
    root.user_add("alice", "apw").await.expect("add alice");
    root.role_add("app").await.expect("role");
    root.grant("app", "/app/", "/app0", PermType::Readwrite)
        .await
        .expect("prefix");
    root.grant("app", "/ro", "", PermType::Read)
        .await
        .expect("key");
    root.grant("app", "w/a", "w/m", PermType::Write)
        .await
        .expect("range");
    root.grant_role("alice", "app").await.expect("grant");
    for k in ["/app/x", "/ro", "/secret", "w/b"] {
        root.put(k).await.expect("seed");
    }
    root.authenticate("alice", "apw")
        .await
        .expect("alice logs in")
}

#[tokio::test]
async fn key_range_and_prefix_permissions_apply_to_every_kv_rpc() {
    let m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let alice = alice_with_permissions(&root).await;

        // range: a key inside, a whole prefix, nothing outside
        assert_eq!(
            alice.range("/app/x", "").await.expect("key"),
            vec!["/app/x"]
        );
        assert_eq!(
            alice.range("/app/", "/app0").await.expect("prefix"),
            vec!["/app/x"]
        );
        assert_eq!(
            alice.range("/ro", "").await.expect("read-only key"),
            vec!["/ro"]
        );
        denied(alice.range("/ap", "/app0").await);
        denied(alice.range("/secret", "").await);
        denied(alice.range("\0", "\0").await);
        denied(alice.range("w/b", "").await);

        // put: write needed
        alice.put("/app/y").await.expect("prefix write");
        alice.put("w/c").await.expect("range write");
        denied(alice.put("/ro").await);
        denied(alice.put("w/z").await);
        let prev = PutRequest {
            key: b"w/c".to_vec(),
            prev_kv: true,
            ..Default::default()
        };
        denied(alice.put_req(prev).await);

        // delete: write on the whole range, read too with prev_kv
        assert_eq!(
            alice
                .delete("w/a", "w/m", false)
                .await
                .expect("range delete"),
            2
        );
        denied(alice.delete("w/a", "w/n", false).await);
        denied(alice.delete("w/b", "", true).await);
        assert_eq!(
            alice
                .delete("/app/y", "", true)
                .await
                .expect("prev_kv with read"),
            1
        );

        // txn: all compares and both branches, nested transactions too
        let ok = TxnRequest {
            compare: vec![cmp_exists("/app/x")],
            success: vec![op_put("/app/t")],
            failure: vec![op_range("/ro")],
        };
        assert!(alice.txn(ok.clone()).await.expect("allowed txn"));
        let mut bad_compare = ok.clone();
        bad_compare.compare.push(cmp_exists("/secret"));
        denied(alice.txn(bad_compare).await);
        let mut bad_failure = ok.clone();
        bad_failure.failure.push(op_put("/ro"));
        denied(alice.txn(bad_failure).await);
        let mut nested = ok.clone();
        let inner = TxnRequest {
            success: vec![op_put("/secret")],
            ..Default::default()
        };
        nested.success.push(RequestOp {
            request: Some(request_op::Request::RequestTxn(inner)),
        });
        denied(alice.txn(nested).await);
        let read_only = TxnRequest {
            success: vec![op_range("/secret")],
            ..Default::default()
        };
        denied(alice.txn(read_only).await);
        assert_eq!(
            root.range("/secret", "").await.expect("untouched"),
            vec!["/secret"]
        );

        // watch: a refused watch is created and canceled at once, as etcd answers
        let w = alice.watch_create("/app/", "/app0").await;
        assert!(w.created && !w.canceled, "{w:?}");
        let w = alice.watch_create("/secret", "").await;
        assert!(w.created && w.canceled, "{w:?}");
        assert_eq!(
            (w.watch_id, w.cancel_reason.as_str()),
            (
                -1,
                "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
            )
        );
        let anon = anonymous(&m).await;
        let w = anon.watch_create("/app/", "/app0").await;
        assert_eq!(
            w.cancel_reason,
            "rpc error: code = InvalidArgument desc = etcdserver: user name is empty"
        );
    })
    .await;
}

#[tokio::test]
async fn leases_and_admin_rpcs_need_the_right_user() {
    let m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let alice = alice_with_permissions(&root).await;
        let mut lease = kvd::proto::etcdserverpb::lease_client::LeaseClient::new(root.chan.clone());
        let id = lease
            .lease_grant(req(LeaseGrantRequest { ttl: 600, id: 0 }, root.t()))
            .await
            .expect("grant")
            .into_inner()
            .id;
        let held = PutRequest {
            key: b"/secret/l".to_vec(),
            value: b"v".to_vec(),
            lease: id,
            ..Default::default()
        };
        root.put_req(held).await.expect("root attaches a key");
        // alice cannot attach to a lease holding keys she cannot write, nor revoke it
        let attach = PutRequest {
            key: b"/app/l".to_vec(),
            value: b"v".to_vec(),
            lease: id,
            ..Default::default()
        };
        denied(alice.put_req(attach).await);
        denied(
            lease
                .lease_revoke(req(LeaseRevokeRequest { id }, alice.t()))
                .await,
        );
        lease
            .lease_revoke(req(LeaseRevokeRequest { id }, root.t()))
            .await
            .expect("root revokes");

        // admin only
        let mut kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(alice.chan.clone());
        denied(
            kv.compact(req(
                CompactionRequest {
                    revision: 1,
                    physical: false,
                },
                alice.t(),
            ))
            .await,
        );
        let mut a = alice.auth();
        denied(a.user_list(req(AuthUserListRequest {}, alice.t())).await);
        denied(a.role_list(req(AuthRoleListRequest {}, alice.t())).await);
        denied(alice.role_add("mine").await);
        let own = a
            .user_get(req(
                AuthUserGetRequest {
                    name: "alice".into(),
                },
                alice.t(),
            ))
            .await;
        assert_eq!(own.expect("own user").into_inner().roles, vec!["app"]);
        denied(
            a.user_get(req(
                AuthUserGetRequest {
                    name: "root".into(),
                },
                alice.t(),
            ))
            .await,
        );
        a.role_get(req(AuthRoleGetRequest { role: "app".into() }, alice.t()))
            .await
            .expect("own role");
        denied(
            a.role_get(req(
                AuthRoleGetRequest {
                    role: "root".into(),
                },
                alice.t(),
            ))
            .await,
        );
        let mut maint = MaintenanceClient::new(alice.chan.clone());
        refused(
            maint
                .hash_kv(req(HashKvRequest { revision: 0 }, alice.t()))
                .await,
            Code::Unknown,
            "auth: permission denied",
        );
        refused(
            maint
                .snapshot(req(SnapshotRequest {}, alice.t()))
                .await
                .map(|_| ()),
            Code::Unknown,
            "auth: permission denied",
        );
        let mut cluster = ClusterClient::new(alice.chan.clone());
        let add = MemberAddRequest {
            peer_ur_ls: vec!["http://127.0.0.1:1".into()],
            is_learner: true,
        };
        denied(cluster.member_add(req(add, alice.t())).await);
        let mut root_kv = kvd::proto::etcdserverpb::kv_client::KvClient::new(root.chan.clone());
        root_kv
            .compact(req(
                CompactionRequest {
                    revision: 2,
                    physical: false,
                },
                root.t(),
            ))
            .await
            .expect("root compacts");
    })
    .await;
}

#[tokio::test]
async fn permission_changes_apply_to_live_simple_tokens() {
    let m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let alice = alice_with_permissions(&root).await;
        alice.put("/app/a").await.expect("allowed");
        root.revoke("app", "/app/", "/app0").await.expect("revoke");
        // a simple token stands for the user at the current auth revision: the new rules apply
        denied(alice.put("/app/a").await);
        root.grant("app", "/app/", "/app0", PermType::Write)
            .await
            .expect("grant again");
        alice.put("/app/a").await.expect("allowed again");
        denied(alice.range("/app/a", "").await);
    })
    .await;
}

#[tokio::test]
async fn auth_state_survives_restart_and_is_in_snapshots_hashed() {
    let mut m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let _alice = alice_with_permissions(&root).await;
        let mut maint = MaintenanceClient::new(root.chan.clone());
        let mut stream = maint
            .snapshot(req(SnapshotRequest {}, root.t()))
            .await
            .expect("snapshot")
            .into_inner();
        let mut image = Vec::new();
        while let Some(chunk) = stream.message().await.expect("chunk") {
            image.extend_from_slice(&chunk.blob);
        }
        image.truncate(image.len() - 32); // the trailing sha256
        assert!(
            !image
                .windows(ROOT_PW.len())
                .any(|w| w == ROOT_PW.as_bytes()),
            "no clear-text password in a snapshot"
        );
        let db = kvd::bbolt::Db::read(&image).expect("bbolt image");
        let backend = kvd::etcd_snapshot::EtcdBackend::from_bolt(&db).expect("etcd backend");
        assert_eq!(backend.auth_enabled, Some(true));
        let names: Vec<&[u8]> = backend.users.iter().map(|u| u.name.as_slice()).collect();
        assert_eq!(names, vec![b"alice".as_slice(), b"root".as_slice()]);
        for u in &backend.users {
            assert!(
                u.password.starts_with(b"$2a$04$"),
                "{:?}",
                String::from_utf8_lossy(&u.password)
            );
        }
        let roles: Vec<&[u8]> = backend.roles.iter().map(|r| r.name.as_slice()).collect();
        assert_eq!(roles, vec![b"app".as_slice(), b"root".as_slice()]);
    })
    .await;
    let old_root = within(async { root_token(&m).await }).await;
    m.restart().await;
    within(async {
        let anon = anonymous(&m).await;
        refused(
            anon.put("k").await,
            Code::InvalidArgument,
            "etcdserver: user name is empty",
        );
        // simple tokens live in memory: a restart forgets them
        let stale = As {
            chan: anon.chan.clone(),
            token: old_root,
        };
        refused(
            stale.put("k").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );
        let alice = anon
            .authenticate("alice", "apw")
            .await
            .expect("alice logs in after restart");
        alice.put("/app/after").await.expect("permissions survived");
        denied(alice.put("/secret").await);
    })
    .await;
}

/// A root token on a member with auth enabled.
async fn root_token(m: &Member) -> Option<String> {
    anonymous(m)
        .await
        .authenticate("root", ROOT_PW)
        .await
        .expect("root logs in")
        .token
}

#[tokio::test]
async fn jwt_tokens_carry_the_auth_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = tempfile::tempdir().expect("key dir");
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
    let priv_key = keys.path().join("jwt.pem");
    let pub_key = keys.path().join("jwt.pub");
    std::fs::write(&priv_key, kp.serialize_pem()).expect("write key");
    std::fs::write(&pub_key, kp.public_key_pem()).expect("write key");
    let spec = format!(
        "jwt,pub-key={},priv-key={},sign-method=ES256,ttl=10m",
        pub_key.display(),
        priv_key.display()
    );
    let cfg = config_with(dir.path(), "http://127.0.0.1:0", &["--auth-token", &spec]);
    let handle = server::start(cfg).await.expect("start");
    let addr = handle.client_addrs[0];
    let m = Member {
        handle: Some(handle),
        dir,
        addr,
    };
    m.wait_leader().await;
    within(async {
        let root = enable_auth(&m).await;
        assert_eq!(
            root.token.as_deref().map(|t| t.split('.').count()),
            Some(3),
            "a JWT"
        );
        // administration checks the user only; key operations check the token's revision too
        root.user_add("alice", "apw").await.expect("add alice");
        root.role_add("app").await.expect("role");
        root.grant("app", "/app/", "/app0", PermType::Readwrite)
            .await
            .expect("grant");
        root.grant_role("alice", "app").await.expect("grant role");
        let old = (
            Code::InvalidArgument,
            "etcdserver: revision of auth store is old",
        );
        refused(root.put("/x").await, old.0, old.1);
        let root = anonymous(&m)
            .await
            .authenticate("root", ROOT_PW)
            .await
            .expect("root again");
        root.put("/x").await.expect("fresh token");
        let alice = anonymous(&m)
            .await
            .authenticate("alice", "apw")
            .await
            .expect("alice");
        alice.put("/app/a").await.expect("allowed");
        root.grant("app", "/more/", "/more0", PermType::Read)
            .await
            .expect("any change");
        refused(alice.put("/app/a").await, old.0, old.1);
        refused(alice.range("/app/a", "").await, old.0, old.1);
        let alice = anonymous(&m)
            .await
            .authenticate("alice", "apw")
            .await
            .expect("alice again");
        alice
            .put("/app/a")
            .await
            .expect("allowed with a fresh token");
        let mut forged = alice.clone();
        forged.token = forged.token.map(|t| format!("{t}x"));
        refused(
            forged.put("/app/a").await,
            Code::Unauthenticated,
            "etcdserver: invalid auth token",
        );
    })
    .await;
}

/// A raw HTTP/1.1 POST to the JSON gateway; returns the status line and the body.
async fn gateway_post(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: kvd\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn gateway_calls_are_checked_as_their_token_user() {
    let m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let alice = alice_with_permissions(&root).await;
        // {"key": "/secret"} and {"key": "/app/x"}, base64
        let secret = r#"{"key":"L3NlY3JldA=="}"#;
        let app = r#"{"key":"L2FwcC94"}"#;
        let (status, body) = gateway_post(m.addr, "/v3/kv/range", None, app).await;
        assert!(
            body.contains("etcdserver: user name is empty"),
            "{status} {body}"
        );
        let (status, body) = gateway_post(m.addr, "/v3/kv/range", alice.t(), app).await;
        assert!(
            status.contains(" 200 ") && body.contains("L2FwcC94"),
            "{status} {body}"
        );
        let (status, body) = gateway_post(m.addr, "/v3/kv/range", alice.t(), secret).await;
        assert!(
            body.contains("etcdserver: permission denied"),
            "{status} {body}"
        );
        let (status, body) = gateway_post(m.addr, "/v3/kv/range", root.t(), secret).await;
        assert!(
            status.contains(" 200 ") && body.contains("L3NlY3JldA=="),
            "{status} {body}"
        );
    })
    .await;
}

#[tokio::test]
async fn certificate_common_name_is_the_user_only_with_client_cert_auth() {
    use kvd::internals::scoped;
    use kvd::internals::Credentials;
    let m = Member::start().await;
    within(async {
        let root = enable_auth(&m).await;
        let alice = alice_with_permissions(&root).await;
        let core = m.handle.as_ref().expect("running").core.clone();
        let read = |key: &str| RangeRequest {
            key: key.into(),
            ..Default::default()
        };
        let cn = |name: &str| Credentials {
            token: None,
            common_name: Some(name.into()),
        };
        // without --client-cert-auth the certificate names nobody
        let r = scoped(cn("alice"), kvd::internals::range(&core, &read("/app/x"))).await;
        assert_eq!(r.expect_err("no user"), kvd::internals::ApiError::UserEmpty);
        let mut opts = core.state.tokens.options();
        opts.client_cert_auth = true;
        core.state.tokens.configure(opts);
        scoped(cn("alice"), kvd::internals::range(&core, &read("/app/x")))
            .await
            .expect("CN alice reads");
        let r = scoped(cn("alice"), kvd::internals::range(&core, &read("/secret"))).await;
        assert_eq!(
            r.expect_err("alice may not"),
            kvd::internals::ApiError::PermissionDenied
        );
        // a CN that names no user reads nothing, and administration says so
        let r = scoped(cn("mallory"), kvd::internals::range(&core, &read("/app/x"))).await;
        assert_eq!(
            r.expect_err("unknown user"),
            kvd::internals::ApiError::PermissionDenied
        );
        let r = scoped(cn("mallory"), core.authorize(kvd::internals::Need::Admin)).await;
        assert_eq!(
            r.expect_err("unknown user"),
            kvd::internals::ApiError::UserNotFound
        );
        // a token wins over the certificate
        let both = Credentials {
            token: root.token.clone(),
            common_name: Some("alice".into()),
        };
        scoped(both, kvd::internals::range(&core, &read("/secret")))
            .await
            .expect("root's token");
        let both = Credentials {
            token: alice.token.clone(),
            common_name: Some("root".into()),
        };
        let r = scoped(both, kvd::internals::range(&core, &read("/secret"))).await;
        assert_eq!(
            r.expect_err("alice's token"),
            kvd::internals::ApiError::PermissionDenied
        );
    })
    .await;
}
