"""Register an option group on one ``ConfigOpts`` without sharing state.

oslo.config keeps a registered group's option table (overrides included)
in the ``OptGroup`` object, and ``register_group`` copies that object
shallowly: registering one module-level ``OptGroup`` on two ``ConfigOpts``
makes an override set on one visible in the other. Each ``ConfigOpts``
gets its own ``OptGroup`` here.
"""

from oslo_config import cfg


def register(conf, group, opts):
    """Register ``opts`` under a private copy of ``group`` on ``conf``.

    :param conf: an ``oslo_config.cfg.ConfigOpts``.
    :param group: the module's ``cfg.OptGroup`` (as ``list_opts`` lists).
    :param opts: the group's options.
    """
    conf.register_group(cfg.OptGroup(group.name, title=group.title,
                                     help=group.help))
    conf.register_opts(opts, group=group.name)
