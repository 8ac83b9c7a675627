//! A real OpenLDAP server (Debian's `slapd`) for one test: its own config, database and
//! certificate in a fresh directory, plain LDAP (with StartTLS) and LDAPS on loopback
//! ports, people and groups from a generated LDIF. Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hub::free_port;

/// The directory's suffix.
pub const BASE: &str = "dc=sudohub,dc=test";

/// One person: `uid`, password, and the groups (`cn`) they are a member of.
pub struct Person<'a> {
    /// Login name.
    pub uid: &'a str,
    /// Password.
    pub password: &'a str,
    /// Groups' `cn`s.
    pub groups: &'a [&'a str],
}

/// A running slapd.
pub struct Slapd {
    child: Option<Child>,
    dir: PathBuf,
    /// Plain LDAP (StartTLS offered).
    pub port: u16,
    /// LDAPS.
    pub tls_port: u16,
    /// The certificate slapd serves (self-signed, for 127.0.0.1 and localhost).
    pub cert: PathBuf,
}

impl Slapd {
    /// Starts slapd with `people` under `ou=people` and their groups under `ou=groups`
    /// (each group both as `groupOfNames` with `member` DNs and, for `posix-*` names,
    /// as `posixGroup` with `memberUid`).
    pub fn start(people: &[Person<'_>]) -> Self {
        crate::require_root();
        for bin in ["/usr/sbin/slapd", "/usr/sbin/slapadd"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: scripts/test-deps.sh installs slapd"
            );
        }
        let dir = std::env::temp_dir().join(crate::unique_name("slapd"));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let (cert, key) = crate::tls::self_signed(&dir);
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix \"{BASE}\"
rootdn \"cn=admin,{BASE}\"
rootpw admin-secret
directory {dir}/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
",
                dir = dir.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        let ldif = dir.join("data.ldif");
        std::fs::write(&ldif, ldif_of(people)).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (port, tls_port) = (free_port(), free_port());
        let child = Command::new("/usr/sbin/slapd")
            .args(["-d", "0", "-f"])
            .arg(&conf)
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("slapd.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let s = Self {
            child: Some(child),
            dir,
            port,
            tls_port,
            cert,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in [self.port, self.tls_port] {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "slapd did not listen on {p}: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// slapd's own output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
    }

    /// The DN of a person.
    pub fn dn(uid: &str) -> String {
        format!("uid={uid},ou=people,{BASE}")
    }

    /// The DN of a group.
    pub fn group(cn: &str) -> String {
        format!("cn={cn},ou=groups,{BASE}")
    }

    /// Stops slapd: what stops a directory server the hub depends on.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The LDIF of the suffix, `ou=people`, `ou=groups`, `people` and their groups.
fn ldif_of(people: &[Person<'_>]) -> String {
    let mut out = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: sudohub\no: sudohub\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    let mut groups: Vec<&str> = people
        .iter()
        .flat_map(|p| p.groups.iter().copied())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    for p in people {
        out.push_str(&format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {pw}\n\n",
            dn = Slapd::dn(p.uid),
            uid = p.uid,
            pw = p.password,
        ));
    }
    for g in groups {
        let members = people.iter().filter(|p| p.groups.contains(&g));
        if g.starts_with("posix-") {
            out.push_str(&format!(
                "dn: {}\nobjectClass: posixGroup\ncn: {g}\ngidNumber: 5000\n",
                Slapd::group(g)
            ));
            for m in members {
                out.push_str(&format!("memberUid: {}\n", m.uid));
            }
        } else {
            out.push_str(&format!(
                "dn: {}\nobjectClass: groupOfNames\ncn: {g}\n",
                Slapd::group(g)
            ));
            for m in members {
                out.push_str(&format!("member: {}\n", Slapd::dn(m.uid)));
            }
        }
        out.push('\n');
    }
    out
}
