//! The `alertmanager-dingtalk` binary: parses flags and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use alertmanager_dingtalk::ingest::Source;
use alertmanager_dingtalk::tools::migrate;
use alertmanager_dingtalk::{app::App, cli, config, server};
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Forwards Prometheus Alertmanager webhooks to DingTalk group robots.
#[derive(Parser)]
#[command(version, about)]
struct Flags {
    /// Configuration file.
    #[arg(long, global = true, default_value = "config.yaml")]
    config: PathBuf,
    /// Address to listen on; overrides `listen:` in the config.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Log level or tracing filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// TLS, client certificates, basic auth and response headers, in the web
    /// configuration format of Prometheus' exporter-toolkit.
    #[arg(long = "web.config.file", value_name = "FILE", global = true)]
    web_config_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config and its templates; print a summary or every error.
    Check,
    /// Print the strategies each alert matches and the exact bodies that would be sent.
    Render {
        /// A webhook payload (JSON) of the source.
        payload: PathBuf,
        /// Who sent it: alertmanager, grafana or hertzbeat.
        #[arg(long, default_value = "alertmanager", value_parser = ["alertmanager", "grafana", "hertzbeat"])]
        source: String,
    },
    /// Print the config.yaml equivalent to a prometheus-webhook-dingtalk config.
    Migrate {
        /// The prometheus-webhook-dingtalk config file (config.yml).
        file: PathBuf,
    },
    /// Send one test message to a robot and explain DingTalk's answer; exit 0 only when
    /// DingTalk accepted it.
    TestRobot {
        /// The robot's name in the config.
        name: String,
        /// The message text.
        #[arg(long)]
        text: Option<String>,
    },
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    match flags.command {
        Some(Command::Check) => match cli::check(&flags.config, flags.web_config_file.as_deref()) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Render {
            ref payload,
            ref source,
        }) => {
            let source = Source::named(source).unwrap_or_default();
            match cli::render(&flags.config, payload, source, jiff::Timestamp::now()) {
                Ok(output) => {
                    print!("{output}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Migrate { ref file }) => match migrate::migrate(file) {
            Ok(config) => {
                print!("{config}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::TestRobot { ref name, ref text }) => {
            test_robot(&flags.config, name, text.as_deref())
        }
        None => serve(flags),
    }
}

fn test_robot(config: &std::path::Path, name: &str, text: Option<&str>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::test_robot(config, name, text)) {
        Ok(probe) => {
            print!("{}", probe.report);
            if probe.delivered {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

fn serve(flags: Flags) -> ExitCode {
    init_logging(&flags.log_level, flags.log_format);
    let config = match config::load(&flags.config) {
        Ok(config) => config,
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!(message = "Invalid configuration.", %error);
            }
            return ExitCode::FAILURE;
        }
    };
    let web = match flags
        .web_config_file
        .as_deref()
        .map(server::WebConfigFile::load)
    {
        None => None,
        Some(Ok(web)) => Some(std::sync::Arc::new(web)),
        Some(Err(error)) => {
            tracing::error!(message = "Invalid web configuration.", %error);
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(message = "Cannot start the async runtime.", %error);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match App::start(config, flags.config.clone(), flags.listen) {
            Ok(app) => app,
            Err(error) => {
                tracing::error!(message = "Cannot start.", %error);
                return ExitCode::FAILURE;
            }
        };
        let listen = app.pinned().listen;
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(message = "Cannot listen.", %listen, %error);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            message = "Listening.",
            address = %listener.local_addr().unwrap_or(listen),
            config = %app.config.snapshot().config.summary(),
        );
        server::serve(listener, app.clone(), web, server::signals(app)).await;
        ExitCode::SUCCESS
    })
}

/// Logs to stderr, filtered by `level`: a level, or per-target levels such as
/// `info,alertmanager_dingtalk=debug`. A filter that does not parse falls back to `info`.
///
/// `Targets` rather than `EnvFilter`: the same syntax for levels and targets, without the
/// span and field filters, whose second regex engine (with a DFA builder) was 0.2 MB of
/// the binary.
fn init_logging(level: &str, format: LogFormat) {
    let filter = level
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let subscriber = tracing_subscriber::registry().with(filter);
    // No colours, at a terminal either: tracing-subscriber is built without "ansi".
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => subscriber.with(layer).init(),
        LogFormat::Json => subscriber.with(layer.json().flatten_event(true)).init(),
    }
}
