"""`vaegen cache`: where the decoded-folder cache is, how big, and clearing it."""

from __future__ import annotations

import click

from vaegen.cli import options


@click.command()
@click.option("--clear", is_flag=True, help="Remove every decoded folder; the next run on a folder decodes it again.")
@options.json_option
def cache(clear, as_json):
    """Show the decoded-folder cache: where it is, how many folders it holds
    and their size. A folder of images is decoded once, by every core, into
    this cache; train, evaluate, fit-prior, map and serve on the same folder
    start from it. It lives in $VAEGEN_CACHE_DIR, else $XDG_CACHE_HOME/vaegen,
    else ~/.cache/vaegen (folders/ inside it).

    \b
    Example:
        vaegen cache
        vaegen cache --clear
    """
    from vaegen.data.cache import cache_usage, clear_cache

    usage = clear_cache() if clear else cache_usage()
    size = f"{usage['bytes'] / 2**20:.1f} MiB"
    what = f"{usage['entries']} decoded folder{'' if usage['entries'] == 1 else 's'}, {size}"
    line = f"Cleared {what} from {usage['path']}" if clear else f"{usage['path']}: {what}"
    options.emit({**usage, "cleared": clear}, as_json, [line])
