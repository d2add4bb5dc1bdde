mod alertmanager;
mod fake_dingtalk;
