//! The Python functions faultline runs natively, with their parameters, so an experiment that
//! names an unknown function or passes an unknown argument is refused before it runs (as Chaos
//! Toolkit's validation does by reading the function's signature).

use serde_json::{Map, Value};

/// One function: module, name, and its parameters (`configuration` is implied).
#[derive(Debug)]
pub struct Function {
    pub module: &'static str,
    pub func: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

const fn f(
    module: &'static str,
    func: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
) -> Function {
    Function {
        module,
        func,
        required,
        optional,
    }
}

/// chaostoolkit-toxiproxy's modules.
pub const TOXI_PROXY_ACTIONS: &str = "chaostoxi.proxy.actions";
pub const TOXI_PROXY_PROBES: &str = "chaostoxi.proxy.probes";
pub const TOXI_TOXIC_ACTIONS: &str = "chaostoxi.toxic.actions";
/// faultline's own modules, for what the extension cannot say.
pub const FAULTLINE_ACTIONS: &str = "faultline.actions";
pub const FAULTLINE_PROBES: &str = "faultline.probes";

/// Every native function. The chaostoxi ones keep chaostoolkit-toxiproxy 0.3's names and
/// arguments exactly (including its `create_bandwith_degradation_toxic` spelling).
pub const FUNCTIONS: &[Function] = &[
    f(
        TOXI_PROXY_ACTIONS,
        "create_proxy",
        &["proxy_name", "upstream_host", "upstream_port"],
        &["listen_host", "listen_port", "enabled"],
    ),
    f(TOXI_PROXY_ACTIONS, "disable_proxy", &["proxy_name"], &[]),
    f(TOXI_PROXY_ACTIONS, "enable_proxy", &["proxy_name"], &[]),
    f(
        TOXI_PROXY_ACTIONS,
        "modify_proxy",
        &["proxy_name"],
        &["listen_address", "upstream_address", "enabled"],
    ),
    f(TOXI_PROXY_ACTIONS, "delete_proxy", &["proxy_name"], &[]),
    f(TOXI_PROXY_ACTIONS, "reset", &[], &[]),
    f(TOXI_PROXY_PROBES, "proxy_exist", &["proxy_name"], &[]),
    f(
        TOXI_PROXY_PROBES,
        "get_proxy_attribute",
        &["proxy_name", "attribute"],
        &[],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "delete_toxic",
        &["for_proxy", "toxic_name"],
        &[],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_toxic",
        &["for_proxy", "toxic_name", "toxic_type"],
        &["stream", "toxicity", "attributes"],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_latency_toxic",
        &["for_proxy", "toxic_name", "latency"],
        &["jitter"],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_bandwith_degradation_toxic",
        &["for_proxy", "toxic_name", "rate"],
        &[],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_slow_connection_close_toxic",
        &["for_proxy", "toxic_name", "delay"],
        &[],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_timeout_toxic",
        &["for_proxy", "toxic_name", "timeout"],
        &[],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_slicer_toxic",
        &[
            "for_proxy",
            "toxic_name",
            "average_size",
            "size_variation",
            "delay",
        ],
        &[],
    ),
    f(
        TOXI_TOXIC_ACTIONS,
        "create_limiter_toxic",
        &["for_proxy", "toxic_name", "bytes_limit"],
        &[],
    ),
    f(
        FAULTLINE_ACTIONS,
        "add_toxic",
        &["proxy", "type"],
        &[
            "name",
            "stream",
            "toxicity",
            "attributes",
            "duration_ms",
            "schedule",
            "target",
        ],
    ),
    f(FAULTLINE_ACTIONS, "remove_toxic", &["proxy", "name"], &[]),
    f(FAULTLINE_ACTIONS, "disable_proxy", &["proxy"], &[]),
    f(FAULTLINE_ACTIONS, "enable_proxy", &["proxy"], &[]),
    f(FAULTLINE_ACTIONS, "reset", &[], &[]),
    f(
        FAULTLINE_PROBES,
        "http_load",
        &[],
        &[
            "url",
            "urls",
            "requests",
            "duration_s",
            "concurrency",
            "method",
            "timeout_s",
            "error_status_from",
        ],
    ),
    f(
        FAULTLINE_PROBES,
        "prometheus_value",
        &["url", "metric"],
        &["labels"],
    ),
    f(
        FAULTLINE_PROBES,
        "prometheus_rate",
        &["url", "metric", "window_s"],
        &["labels"],
    ),
    f(
        FAULTLINE_PROBES,
        "seconds_until_metric",
        &["url", "metric", "range", "timeout_s"],
        &["labels", "interval_s"],
    ),
];

/// Finds a function, or says why it cannot run here.
pub fn lookup(module: &str, func: &str) -> Result<&'static Function, String> {
    if let Some(found) = FUNCTIONS
        .iter()
        .find(|f| f.module == module && f.func == func)
    {
        return Ok(found);
    }
    let known: Vec<&str> = FUNCTIONS
        .iter()
        .filter(|f| f.module == module)
        .map(|f| f.func)
        .collect();
    if known.is_empty() {
        Err(format!(
            "Python module '{module}' is not one faultline runs natively (it knows \
             chaostoxi.proxy.actions, chaostoxi.proxy.probes, chaostoxi.toxic.actions, \
             faultline.actions and faultline.probes); run this experiment with Chaos Toolkit \
             (`chaos run`) instead"
        ))
    } else {
        Err(format!(
            "'{module}' has no function '{func}'; known: {}",
            known.join(", ")
        ))
    }
}

/// Checks a call's module, function and argument names.
pub fn check_call(module: &str, func: &str, arguments: &Map<String, Value>) -> Result<(), String> {
    let function = lookup(module, func)?;
    for name in arguments.keys() {
        if !function.required.contains(&name.as_str())
            && !function.optional.contains(&name.as_str())
        {
            let mut all: Vec<&str> = function.required.to_vec();
            all.extend(function.optional);
            return Err(format!(
                "{module}.{func} takes no argument '{name}'; it takes: {}",
                all.join(", ")
            ));
        }
    }
    if let Some(missing) = function
        .required
        .iter()
        .find(|r| !arguments.contains_key(**r))
    {
        return Err(format!(
            "{module}.{func} needs the argument '{missing}' (required: {})",
            function.required.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// The extension's own spelling of the bandwidth function is what experiments use.
    #[test]
    fn chaostoxi_names_are_kept_verbatim() {
        let call = args(json!({"for_proxy": "p", "toxic_name": "t", "rate": 1}));
        assert!(check_call(
            TOXI_TOXIC_ACTIONS,
            "create_bandwith_degradation_toxic",
            &call
        )
        .is_ok());
    }

    /// Another Python module is refused with a pointer to Chaos Toolkit.
    #[test]
    fn foreign_module_suggests_chaos_toolkit() {
        let err = lookup("chaosk8s.pod.actions", "terminate_pods").unwrap_err();
        assert!(
            err.contains("chaosk8s.pod.actions") && err.contains("chaos run"),
            "{err}"
        );
    }

    /// A misspelt argument names the argument and lists the valid ones.
    #[test]
    fn unknown_argument_is_named() {
        let call = args(json!({"for_proxy": "p", "toxic_name": "t", "latenc": 1}));
        let err = check_call(TOXI_TOXIC_ACTIONS, "create_latency_toxic", &call).unwrap_err();
        assert!(err.contains("'latenc'") && err.contains("latency"), "{err}");
    }

    /// A missing required argument is named.
    #[test]
    fn missing_argument_is_named() {
        let call = args(json!({"for_proxy": "p"}));
        let err = check_call(TOXI_TOXIC_ACTIONS, "delete_toxic", &call).unwrap_err();
        assert!(err.contains("'toxic_name'"), "{err}");
    }
}
