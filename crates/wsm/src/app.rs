//! Runs the chosen subcommand and turns its result into an exit status,
//! printing an error as one line with its causes.

use std::io;

use clap::CommandFactory;

use crate::{
    cli::{self, Args},
    connect::{self, Ending},
    demo, echo_server,
    error::{Error, chain},
    exit::Exit,
    fault_proxy, logging,
};

/// Runs `args` and says how the process ends.
pub(crate) fn run(args: Args) -> Exit {
    let result = match args.command {
        cli::Command::Connect(args) => connect::run(*args).map(|ending| match ending {
            Ending::Done => Exit::Success,
            Ending::Undelivered => Exit::Undelivered,
            Ending::Ended => Exit::Ended,
            Ending::Interrupted | Ending::Abort => Exit::Interrupted,
        }),
        cli::Command::Completions(args) => {
            let mut command = Args::command();
            clap_complete::generate(args.shell, &mut command, "wsm", &mut io::stdout());
            Ok(Exit::Success)
        }
        command => {
            logging::init(io::stderr, "warn");
            server_or_demo(command).map(|()| Exit::Success)
        }
    };
    match result {
        Ok(exit) => exit,
        Err(err) => {
            let exit = err.exit();
            // `wsm demo | head`: the reader has what it wanted.
            if exit != Exit::Success {
                eprintln!("wsm: error: {}", chain(&err));
            }
            exit
        }
    }
}

fn server_or_demo(command: cli::Command) -> Result<(), Error> {
    // The echo server runs on one thread: it serves benchmarks pinned to one
    // core, where worker threads would only contend for that core.
    let mut builder = match command {
        cli::Command::EchoServer(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build().map_err(Error::Runtime)?;
    runtime.block_on(async {
        match command {
            cli::Command::Demo(args) => demo::run(&args, io::stdout()).await,
            cli::Command::EchoServer(args) => echo_server::run(&args, io::stdout()).await,
            cli::Command::FaultProxy(args) => fault_proxy::run(&args, io::stdout()).await,
            cli::Command::Connect(_) | cli::Command::Completions(_) => Ok(()),
        }
    })
}
