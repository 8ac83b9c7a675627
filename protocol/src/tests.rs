//! Unit tests of the crate, kept apart from the code an auditor reads.

mod bounded {
    use crate::bounded::*;
    #[allow(unused_imports)]
    use crate::*;

    #[test]
    fn accepts_up_to_the_cap() {
        assert_eq!(
            Bounded::<3>::new("abc").map(|b| b.into_inner()),
            Ok("abc".to_owned())
        );
    }

    #[test]
    fn refuses_over_the_cap_and_nul() {
        assert_eq!(
            Bounded::<3>::new("abcd"),
            Err(BoundedError::TooLong { len: 4, max: 3 })
        );
        assert_eq!(Bounded::<8>::new("a\0b"), Err(BoundedError::Nul));
    }

    #[test]
    fn deserialising_enforces_the_cap() {
        let long = postcard::to_allocvec(&"abcd".to_owned()).unwrap();
        assert!(postcard::from_bytes::<Bounded<3>>(&long).is_err());
        let ok = postcard::to_allocvec(&"abc".to_owned()).unwrap();
        assert_eq!(
            postcard::from_bytes::<Bounded<3>>(&ok).unwrap().as_str(),
            "abc"
        );
    }
}

mod frame {
    use crate::frame::*;
    use crate::spawner::Request;
    use crate::Hello;
    #[allow(unused_imports)]
    use crate::*;

    #[test]
    fn round_trip_through_a_stream() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &Request::Hello(Hello::current())).unwrap();
        write_frame(&mut wire, &Request::Status).unwrap();
        let mut r = &wire[..];
        assert_eq!(
            read_message::<_, Request>(&mut r).unwrap(),
            Some(Request::Hello(Hello::current()))
        );
        assert_eq!(
            read_message::<_, Request>(&mut r).unwrap(),
            Some(Request::Status)
        );
        assert_eq!(read_message::<_, Request>(&mut r).unwrap(), None);
    }

    #[test]
    fn oversize_length_is_refused_before_reading_the_body() {
        let mut wire = ((MAX_FRAME_LEN + 1) as u32).to_le_bytes().to_vec();
        // No body at all: a reader that allocated first would then report truncation.
        let err = read_frame(&mut &wire[..]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len } if len == MAX_FRAME_LEN + 1));
        wire.truncate(2);
        assert!(matches!(
            read_frame(&mut &wire[..]).unwrap_err(),
            FrameError::Truncated {
                expected: 4,
                got: 2
            }
        ));
    }

    #[test]
    fn truncated_body_is_an_error() {
        let frame = encode(&Request::Status).unwrap();
        let mut cut = frame[..frame.len() - 1].to_vec();
        cut[0] = 5;
        assert!(matches!(
            read_frame(&mut &cut[..]).unwrap_err(),
            FrameError::Truncated { .. }
        ));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut body = postcard::to_stdvec(&Request::Status).unwrap();
        body.push(0);
        assert!(matches!(
            decode::<Request>(&body).unwrap_err(),
            FrameError::TrailingBytes { count: 1 }
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            decode::<Request>(&[0xff, 0xff, 0xff]).unwrap_err(),
            FrameError::Malformed(_)
        ));
    }

    #[test]
    fn decoder_splits_byte_by_byte() {
        let mut wire = encode(&Request::Status).unwrap().to_vec();
        wire.extend_from_slice(&encode(&Request::Hello(Hello::current())).unwrap());
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in wire {
            d.push(&[b]);
            while let Some(m) = d.next_message::<Request>().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![Request::Status, Request::Hello(Hello::current())]);
        assert!(d.is_empty());
        assert!(d.eof_error().is_none());
    }

    #[test]
    fn decoder_refuses_oversize_header_at_once() {
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_le_bytes());
        assert!(matches!(
            d.next_body().unwrap_err(),
            FrameError::TooLarge { .. }
        ));
    }

    #[test]
    fn decoder_reports_a_partial_frame_at_eof() {
        let mut d = FrameDecoder::new();
        d.push(&[3, 0, 0, 0, 1]);
        assert!(d.next_body().unwrap().is_none());
        assert!(matches!(
            d.eof_error(),
            Some(FrameError::Truncated {
                expected: 7,
                got: 5
            })
        ));
    }
}

mod secret {
    use crate::secret::*;
    #[allow(unused_imports)]
    use crate::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn refuses_oversize_and_nul() {
        assert!(Secret::new("x".repeat(MAX_SECRET_LEN + 1)).is_err());
        assert!(Secret::new("a\0b").is_err());
    }
}

mod spawner {
    use crate::frame::{decode, encode, HEADER_LEN};
    use crate::spawner::*;
    #[allow(unused_imports)]
    use crate::*;

    #[test]
    fn spawn_round_trips_and_debug_hides_values() {
        let target = Request::Target(Target {
            user: Bounded::new("alice").unwrap(),
            server_name: Bounded::new("gpu").unwrap(),
        });
        let frame = encode(&target).unwrap();
        assert_eq!(decode::<Request>(&frame[HEADER_LEN..]).unwrap(), target);
        let req = Request::Spawn(Spawn {
            port: 8888,
            env: vec![EnvVar {
                name: Bounded::new("JUPYTERHUB_API_TOKEN").unwrap(),
                value: Bounded::new("s3cr3t").unwrap(),
            }],
        });
        let frame = encode(&req).unwrap();
        assert_eq!(decode::<Request>(&frame[HEADER_LEN..]).unwrap(), req);
        assert!(!format!("{req:?}").contains("s3cr3t"));
    }

    #[test]
    fn error_messages_are_capped() {
        let e = ErrorReply::new(ErrorKind::Internal, "é".repeat(MAX_MESSAGE));
        assert!(e.message.len() <= MAX_MESSAGE);
    }
}

mod pam {
    use crate::frame::{decode, encode, HEADER_LEN};
    use crate::pam::*;
    #[allow(unused_imports)]
    use crate::*;

    #[test]
    fn authenticate_round_trips_without_leaking_in_debug() {
        let req = PamRequest::Authenticate {
            username: Bounded::new("alice").unwrap(),
            password: Secret::new("correct horse").unwrap(),
        };
        let frame = encode(&req).unwrap();
        assert_eq!(decode::<PamRequest>(&frame[HEADER_LEN..]).unwrap(), req);
        assert!(!format!("{req:?}").contains("horse"));
    }
}
