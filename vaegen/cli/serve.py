"""`vaegen serve`: the latent space as a local web page to play with."""

from __future__ import annotations

import contextlib
import signal
import threading

import click

from vaegen.choices import PROJECTIONS
from vaegen.cli import options


@click.command()
@click.option("--host", default="127.0.0.1",
              help="Address to listen on. Anything but 127.0.0.1 lets other machines in (a warning says so).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="Port to listen on; 0 picks a free one.")
@options.data_options(what="Images whose latents make the map.")
@click.option("--limit", type=click.IntRange(min=3), default=5000, show_default=True,
              help="Test images on a map made from data.")
@click.option("--projection", type=click.Choice(PROJECTIONS), default="auto",
              help="How the map lays a wide latent flat (see `vaegen map --help`).")
@options.model_options
@options.quiet_option
def serve(host, port, dataset, data_dir, skip_bad, limit, projection, model_dir, provider, threads, verbose, quiet):
    """Explore the latent space in a browser, on this machine.

    The page shows the test set's map (as `vaegen map` draws it; a bundle
    carries its own, so no dataset is needed): click or drag on it to
    decode that point, live. Beside it: sliders for the most
    active latent dimensions, a class picker (when the bundle has a
    class-conditional prior), a pad to draw a digit on and see where it
    lands, and interpolation between two chosen points, as a strip and
    animated. The page is plain HTML and JavaScript shipped with vaegen; it
    needs no network. Ctrl-C (or SIGTERM) stops the server.

    \b
    Example:
        vaegen serve                 # then open http://127.0.0.1:8000/
        vaegen serve --port 8080 --model runs/mnist
    """
    from vaegen.errors import DataError
    from vaegen.latent.map import bundle_or_data_map, empty_map
    from vaegen.serve.app import Explorer
    from vaegen.serve.server import LOOPBACK, make_server

    server = make_server(host, port)  # first: a port in use is news before the map is made
    try:
        with _sigterm_as_ctrl_c():
            model = options.open_model(model_dir, provider, threads, verbose)
            try:
                with options.DataProgress("loading images", quiet) as loading:
                    latent_map = bundle_or_data_map(model, dataset, from_data=options.given_any(
                        "dataset", "data_dir", "limit", "projection"), data_dir=data_dir, limit=limit, method=projection,
                        progress=loading, skip_bad=skip_bad)
            except DataError as exc:
                # The rest of the page needs no data: it starts, and the map pane says why it is empty.
                note = f"No map: this bundle carries none, and its images could not be read ({exc})"
                options.echo_err(f"Warning: {note}", quiet)
                latent_map = empty_map(model, note)
            server.attach(Explorer(model, latent_map))
            if host not in LOOPBACK:
                options.echo_err(f"Warning: listening on {host}: anyone who can reach this machine can use the explorer.")
            click.echo(f"Serving {model.bundle.path} at {server.url} (Ctrl-C stops it)")
            server.serve_forever()
    except KeyboardInterrupt:
        options.echo_err("Stopped.", quiet)
    finally:
        server.server_close()


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (a service manager's stop, `kill`) stops the server as Ctrl-C
    does, at once and with the same one line, instead of Python's silent
    default; the old handler comes back afterwards. Handlers can be set in
    the main thread alone; elsewhere SIGTERM keeps its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
