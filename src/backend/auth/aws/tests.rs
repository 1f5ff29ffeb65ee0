//! Choosing the region and the credential source, reading profiles, and
//! an STS that cannot be reached.

use super::*;
use crate::backend::env::env_of as env;

fn section() -> AwsSection {
    crate::config::default_config().prometheus_aws
}

fn client() -> reqwest::Client {
    crate::backend::http_client(std::time::Duration::from_secs(2), None, None, None, false).unwrap()
}

fn amp() -> Vec<Url> {
    vec![Url::parse("https://aps-workspaces.eu-central-1.amazonaws.com/workspaces/ws-1/").unwrap()]
}

#[test]
fn region_comes_from_the_option_then_the_amp_url_then_the_environment() {
    let mut a = section();
    a.access_key_id = Some("AKID".into());
    a.secret_access_key = Some(crate::config::Secret::new("s"));
    let r =
        AwsCredentialProvider::resolve(&a, &amp(), &env(&[("AWS_REGION", "us-west-2")]), client())
            .unwrap();
    assert_eq!(r.region, "eu-central-1");
    let r = AwsCredentialProvider::resolve(&a, &[], &env(&[("AWS_REGION", "us-west-2")]), client())
        .unwrap();
    assert_eq!(r.region, "us-west-2");
    assert_eq!(
        r.provider.sts_endpoint().as_str(),
        "https://sts.us-west-2.amazonaws.com/"
    );
    a.region = Some("ap-south-1".into());
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&[]), client()).unwrap();
    assert_eq!(r.region, "ap-south-1");
    a.region = None;
    let e = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client())
        .err()
        .unwrap();
    assert!(e.contains("region"), "{e}");
}

#[test]
fn auto_source_follows_the_sdk_order() {
    let a = section();
    let irsa = [
        ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/amp"),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        ),
        ("HOME", "/nonexistent"),
    ];
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&irsa), client()).unwrap();
    assert_eq!(r.provider.base_name, "web_identity");
    assert!(r
        .provider
        .describe()
        .contains("arn:aws:iam::111122223333:role/amp"));
    // Environment keys come before web identity.
    let mut both = irsa.to_vec();
    both.push(("AWS_ACCESS_KEY_ID", "AKID"));
    both.push(("AWS_SECRET_ACCESS_KEY", "secret"));
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&both), client()).unwrap();
    assert_eq!(r.provider.base_name, "environment");
    assert!(!r.provider.describe().contains("secret"));
    // Web identity comes before container credentials.
    let mut pod = irsa.to_vec();
    pod.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://169.254.170.23/v1/credentials",
    ));
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&pod), client()).unwrap();
    assert_eq!(r.provider.base_name, "web_identity");
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&pod[2..]), client()).unwrap();
    assert_eq!(r.provider.base_name, "container");
    assert_eq!(
        r.provider.describe(),
        "container credentials from http://169.254.170.23/v1/credentials"
    );
    // Nothing configured: the instance profile, as the SDKs do…
    let home = [("HOME", "/nonexistent")];
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&home), client()).unwrap();
    assert_eq!(r.provider.base_name, "instance_metadata");
    assert!(
        r.provider.describe().contains("http://169.254.169.254/"),
        "{}",
        r.provider.describe()
    );
    let moved = [
        home[0],
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:7/"),
    ];
    let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&moved), client()).unwrap();
    assert!(r.provider.describe().contains("http://127.0.0.1:7/"));
    // …unless it is switched off: then a message naming what to set.
    let off = [home[0], ("AWS_EC2_METADATA_DISABLED", "true")];
    let e = AwsCredentialProvider::resolve(&a, &amp(), &env(&off), client())
        .err()
        .unwrap();
    assert!(e.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{e}");
    assert!(e.contains("AWS_EC2_METADATA_DISABLED"), "{e}");
    // A container variable that cannot be used is an error, not a fallback.
    let e = AwsCredentialProvider::resolve(
        &a,
        &amp(),
        &env(&[
            home[0],
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/"),
        ]),
        client(),
    )
    .err()
    .unwrap();
    assert!(e.contains("plain http"), "{e}");
}

#[tokio::test]
async fn profiles_are_read_from_the_shared_files() {
    let dir = std::env::temp_dir().join(format!("aetos-aws-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("credentials"),
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n\
         [metrics]\naws_access_key_id = AKIDMETRICS\naws_secret_access_key = s2\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config"),
        "[profile metrics]\nregion = sa-east-1\n",
    )
    .unwrap();
    let mut a = section();
    a.credential_source = AwsCredentialSource::Profile;
    a.shared_credentials_file = Some(dir.join("credentials").display().to_string());
    a.config_file = Some(dir.join("config").display().to_string());
    let r = AwsCredentialProvider::resolve(&a, &[], &env(&[("AWS_PROFILE", "metrics")]), client())
        .unwrap();
    assert_eq!(r.region, "sa-east-1");
    let c = r.provider.credentials().await.unwrap();
    assert_eq!(c.access_key_id(), "AKIDMETRICS");
    assert_eq!(c.secret_access_key(), "s2");
    // A profile without keys is a clear error.
    let e = AwsCredentialProvider::resolve(
        &a,
        &[],
        &env(&[("AWS_PROFILE", "nope"), ("AWS_REGION", "x")]),
        client(),
    )
    .err()
    .unwrap();
    assert!(e.contains("\"nope\""), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sts_endpoint_option_and_environment_and_global_signing_region() {
    let mut a = section();
    a.access_key_id = Some("AKID".into());
    a.secret_access_key = Some(crate::config::Secret::new("s"));
    a.region = Some("eu-west-1".into());
    let r = AwsCredentialProvider::resolve(
        &a,
        &[],
        &env(&[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/")]),
        client(),
    )
    .unwrap();
    assert_eq!(r.provider.sts_endpoint().as_str(), "http://127.0.0.1:1/");
    a.sts_endpoint = Some(Url::parse("https://sts.amazonaws.com/").unwrap());
    let r = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client()).unwrap();
    assert_eq!(r.provider.sts.region, "us-east-1");
    a.region = Some("cn-north-1".into());
    a.sts_endpoint = None;
    let r = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client()).unwrap();
    assert_eq!(
        r.provider.sts_endpoint().as_str(),
        "https://sts.cn-north-1.amazonaws.com.cn/"
    );
}

#[tokio::test]
async fn unreachable_sts_is_an_error_naming_the_action() {
    let dir = std::env::temp_dir().join(format!("aetos-aws-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), "eyJ.token.sig").unwrap();
    let mut a = section();
    a.credential_source = AwsCredentialSource::WebIdentity;
    a.web_identity_role_arn = Some("arn:aws:iam::1:role/r".into());
    a.web_identity_token_file = Some(dir.join("token").display().to_string());
    a.region = Some("eu-west-1".into());
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    a.sts_endpoint = Some(Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap());
    let r = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client()).unwrap();
    let e = r.provider.credentials().await.unwrap_err();
    assert!(e.starts_with("STS AssumeRoleWithWebIdentity"), "{e}");
    assert!(!e.contains("eyJ.token.sig"));
    std::fs::remove_dir_all(&dir).unwrap();
}
