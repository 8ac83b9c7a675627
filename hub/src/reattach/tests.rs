use super::*;
use std::os::unix::fs::PermissionsExt;

struct Recorder {
    accept_pid: u32,
    adopted: Mutex<Vec<VerifiedClaim>>,
}

impl ReattachHandler for Recorder {
    fn verify(&self, claim: &VerifiedClaim) -> Result<(), String> {
        if claim.pid == self.accept_pid {
            Ok(())
        } else {
            Err(format!("no server with pid {}", claim.pid))
        }
    }
    fn adopt(&self, claim: VerifiedClaim, _stream: UnixStream) {
        self.adopted.lock().unwrap().push(claim);
    }
}

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

async fn dial(path: &Path, user: &str, pid: u32) -> ReattachAnswer {
    let mut s = UnixStream::connect(path).await.unwrap();
    let hello = ReattachHello {
        version: PROTOCOL_VERSION,
        user: Bounded::new(user).unwrap(),
        server_name: Bounded::new("").unwrap(),
        pid,
        status: ServerStatus::Running { pid },
    };
    s.write_all(&frame::encode(&hello).unwrap()).await.unwrap();
    let mut header = [0u8; HEADER_LEN];
    s.read_exact(&mut header).await.unwrap();
    let mut body = vec![0u8; frame::body_len(header).unwrap()];
    s.read_exact(&mut body).await.unwrap();
    frame::decode(&body).unwrap()
}

#[tokio::test]
async fn accepts_own_user_with_known_pid_and_refuses_the_rest() {
    let dir = std::env::temp_dir().join(format!("sudohub-reattach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spawners.sock");
    let listener = bind(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o666
    );
    let rec = Arc::new(Recorder {
        accept_pid: 4242,
        adopted: Mutex::new(Vec::new()),
    });
    tokio::spawn(serve(listener, rec.clone()));

    assert_eq!(dial(&path, &me(), 4242).await, ReattachAnswer::Accepted);
    assert!(matches!(
        dial(&path, &me(), 1).await,
        ReattachAnswer::Refused { .. }
    ));
    // Someone else's name: the peer uid does not match, whatever the DB says.
    let other = if me() == "root" { "nobody" } else { "root" };
    match dial(&path, other, 4242).await {
        ReattachAnswer::Refused { message } => assert!(message.contains("may not speak")),
        a => panic!("expected a refusal, got {a:?}"),
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let adopted = rec.adopted.lock().unwrap().clone();
    assert_eq!(adopted.len(), 1);
    assert_eq!(adopted[0].pid, 4242);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn one_uid_cannot_hold_every_slot() {
    let dir = std::env::temp_dir().join(format!("sudohub-reattach-s{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spawners.sock");
    let listener = bind(&path).unwrap();
    let rec = Arc::new(Recorder {
        accept_pid: 4242,
        adopted: Mutex::new(Vec::new()),
    });
    tokio::spawn(serve(listener, rec.clone()));
    // Idle connections that never say hello, more than one uid may hold.
    let mut idle = Vec::new();
    for _ in 0..MAX_PER_UID + 3 {
        idle.push(UnixStream::connect(&path).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut closed = 0;
    for s in &mut idle {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 3,
        "the connections beyond {MAX_PER_UID} are closed at once"
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Their slots are free again.
    assert_eq!(dial(&path, &me(), 4242).await, ReattachAnswer::Accepted);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn garbage_and_oversize_hellos_are_dropped() {
    let dir = std::env::temp_dir().join(format!("sudohub-reattach-g{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spawners.sock");
    let listener = bind(&path).unwrap();
    let rec = Arc::new(Recorder {
        accept_pid: 1,
        adopted: Mutex::new(Vec::new()),
    });
    tokio::spawn(serve(listener, rec.clone()));
    for bytes in [vec![0xff; 16], u32::MAX.to_le_bytes().to_vec()] {
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let mut buf = Vec::new();
        // The hub closes the connection without answering.
        let n = tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    assert!(rec.adopted.lock().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
